"""The FFmpeg/ffprobe runs of a chunked encode, as argv lists: pure, no I/O.

As in ffmpeg/argv.py, every element is a constant of this module, a number, or an absolute
path we chose: no user text. The codec part is the single run's own (ffmpeg/codecs.py
`transcode_args`), so a chunk is encoded exactly as the single run would encode it, and the
join writes the container the single run writes (docs/chunks.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from ffpool.chunks.plan import ChunkPlan, input_name
from ffpool.domain.jobs import AudioCodec, Container, TranscodeOp, VideoCodec
from ffpool.ffmpeg import codecs, limits
from ffpool.ffmpeg.argv import file_url
from ffpool.ffmpeg.argv_base import head, threads, whitelists
from ffpool.ffmpeg.binaries import Binaries
from ffpool.ffmpeg.codecs import num
from ffpool.settings import Settings

# The join reads our own list file (concat) naming our own chunk files (Matroska), and only
# those: the concat demuxer passes its whitelists on to the files it opens.
CONCAT_FORMAT_WHITELIST: Final = "concat,matroska"
# Chunks are Matroska: it carries every video codec ffpool encodes, and any timestamps.
CHUNK_MUXER: Final = "matroska"
# Encoded audio waits for the join in MP4: its edit list keeps the encoder's priming (the
# first samples' negative timestamps), which Matroska drops for AAC and MP3; the join then
# muxes the very timestamps the single run muxes. A copy keeps the target's own container.
AUDIO_MUXER: Final = "mp4"
AUDIO_NAME: Final = "audio.m4a"
_QUICKTIME: Final = (Container.MP4, Container.MOV)
_LIST_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\.mkv")


def _input(src: Path, settings: Settings, *, decodes: bool = True) -> list[str]:
    pixels = ["-max_pixels", str(limits.decoder_max_pixels(settings.max_input_pixels))]
    decoder = [*pixels, *threads(settings)] if decodes else []
    return [*decoder, *whitelists(), "-i", file_url(src)]


def _output(muxer: str, out: Path, settings: Settings) -> list[str]:
    return [
        *["-map_metadata", "-1", "-map_chapters", "-1"],
        *threads(settings),
        *("-fs", str(settings.max_output_bytes)),
        *("-f", muxer, file_url(out)),
    ]


def keyframes_argv(binaries: Binaries, src: Path) -> tuple[str, ...]:
    """ffprobe listing the first video stream's packets (time and flags) as compact JSON:
    the demuxer only, nothing is decoded (chunks/plan.py `parse_keyframes`)."""
    return (
        *binaries.prefix,
        binaries.ffprobe,
        *["-v", "error", "-hide_banner"],
        *whitelists(),
        *["-select_streams", "v:0", "-show_entries", "packet=pts_time,flags"],
        *["-of", "json=c=1"],
        file_url(src),
    )


def cut_argv(
    binaries: Binaries, settings: Settings, src: Path, plan: ChunkPlan, out_dir: Path
) -> tuple[str, ...]:
    """Stream copy of the first video stream into `out_dir/in-NNNN.mkv`, split exactly at the
    plan's packets, each chunk's timestamps starting from zero."""
    if "%" in str(out_dir):
        raise ValueError("the chunk directory's path may not contain '%'")
    # -copyinkf: packets before the first keyframe are kept, so the segment muxer's packet
    # count is the same as ffprobe's (chunks/plan.py counts every packet).
    copy = ["-map", "0:v:0", "-c", "copy", "-copyinkf"]
    if plan.count == 1:
        return (
            *head(binaries, settings),
            *_input(src, settings, decodes=False),
            *copy,
            *_output(CHUNK_MUXER, out_dir / input_name(0), settings),
        )
    frames = ",".join(str(cut.packet) for cut in plan.cuts[1:])
    return (
        *head(binaries, settings),
        *_input(src, settings, decodes=False),
        *copy,
        *["-map_metadata", "-1", "-map_chapters", "-1"],
        *("-f", "segment", "-segment_format", CHUNK_MUXER, "-segment_frames", frames),
        *("-reset_timestamps", "1"),
        file_url(out_dir / "in-%04d.mkv"),
    )


def _video_only(op: TranscodeOp) -> TranscodeOp:
    # Matroska takes every codec (no validation needed: model_copy keeps the op's checked
    # values); the container's own flags (faststart, hvc1) are the join's.
    return op.model_copy(update={"audio_codec": AudioCodec.NONE, "container": Container.MKV})


def encode_argv(
    binaries: Binaries, settings: Settings, op: TranscodeOp, src: Path, out: Path
) -> tuple[str, ...]:
    """One chunk's video, encoded as the single run encodes video, into Matroska."""
    if op.video_codec in (VideoCodec.COPY, VideoCodec.NONE):
        raise ValueError("a chunk's video is re-encoded")
    return (
        *head(binaries, settings),
        *_input(src, settings),
        *codecs.transcode_args(_video_only(op)),
        *_output(CHUNK_MUXER, out, settings),
    )


def audio_name(op: TranscodeOp) -> str:
    """Where the whole input's audio waits for the join."""
    if op.audio_codec is AudioCodec.COPY:
        return f"audio.{op.container.value}"
    return AUDIO_NAME


def audio_argv(
    binaries: Binaries, settings: Settings, op: TranscodeOp, src: Path, out: Path
) -> tuple[str, ...]:
    """The input's first audio stream, encoded (or copied) once as the single run would."""
    if op.audio_codec is AudioCodec.NONE:
        raise ValueError("the operation has no audio")
    audio_only = op.model_copy(update={"video_codec": VideoCodec.NONE, "container": Container.MKV})
    muxer = codecs.MUXERS[op.container] if op.audio_codec is AudioCodec.COPY else AUDIO_MUXER
    return (
        *head(binaries, settings),
        *_input(src, settings, decodes=False),
        *codecs.transcode_args(audio_only),
        *_output(muxer, out, settings),
    )


def concat_list(names: Sequence[str], durations: Sequence[float] | None = None) -> str:
    """The concat demuxer's list of our own chunk files, by name, relative to the list. With
    `durations` (the plan's: chunks/plan.py `Cut.duration_s`), each chunk starts exactly where
    the plan says rather than where the file before it seems to end: Matroska's millisecond
    timestamps would otherwise add up to a drift at frame rates like 30000/1001."""
    if not names:
        raise ValueError("nothing to join")
    if durations is not None and len(durations) != len(names):
        raise ValueError("one duration per chunk")
    lines = ["ffconcat version 1.0\n"]
    for i, name in enumerate(names):
        if not _LIST_NAME.fullmatch(name):
            raise ValueError("not a chunk file name")
        lines.append(f"file {name}\n")
        if durations is not None and durations[i] > 0:
            lines.append(f"duration {num(durations[i])}\n")
    return "".join(lines)


def _container_flags(container: Container, video_codec: VideoCodec | None) -> list[str]:
    """The single run's container flags (ffmpeg/codecs.py): a copy keeps none of them."""
    if container not in _QUICKTIME:
        return []
    tag = ["-tag:v", "hvc1"] if video_codec is VideoCodec.H265 else []
    return [*tag, "-movflags", "+faststart"]


def join_argv(
    binaries: Binaries,
    settings: Settings,
    list_file: Path,
    audio: Path | None,
    container: Container,
    out: Path,
    *,
    video_codec: VideoCodec | None = None,
    video_offset_s: float = 0.0,
) -> tuple[str, ...]:
    """The chunks (`list_file`, from `concat_list`) and the audio copied into `container`.

    -copyts: the audio keeps its own timestamps (the encoder's priming before zero), so the
    muxer shifts the streams exactly as it does in the single run. `video_offset_s`: how much
    later than the audio the input's video starts (the single run keeps that gap; the
    chunks start at zero)."""
    audio_input = [*whitelists(), "-i", file_url(audio)] if audio is not None else []
    audio_map = ["-map", "1:a:0"] if audio is not None else []
    offset = ["-itsoffset", num(video_offset_s)] if video_offset_s > 0 else []
    return (
        *head(binaries, settings),
        "-copyts",
        *offset,
        *("-f", "concat", "-safe", "1", *whitelists(CONCAT_FORMAT_WHITELIST)),
        *("-i", file_url(list_file)),
        *audio_input,
        *("-map", "0:v:0", *audio_map, "-c", "copy"),
        *_container_flags(container, video_codec),
        *_output(codecs.MUXERS[container], out, settings),
    )
