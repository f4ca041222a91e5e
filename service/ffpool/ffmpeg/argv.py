"""Typed operations compiled to FFmpeg argv lists: pure, no I/O.

Every element is a constant of this module, an absolute path we chose, or a number validated by
the job model and formatted here. No user text ever becomes an argument or a filtergraph.
"""

from __future__ import annotations

from pathlib import Path

from ffpool.domain.events import MediaInfo
from ffpool.domain.jobs import (
    AudioCodec,
    Container,
    ExtractAudioOp,
    LadderOp,
    Operation,
    ProbeOp,
    ThumbnailOp,
    TranscodeOp,
    TrimMode,
    TrimOp,
    VideoCodec,
)
from ffpool.ffmpeg import codecs as codecs
from ffpool.ffmpeg import ladder
from ffpool.ffmpeg.argv_base import FORMAT_WHITELIST as FORMAT_WHITELIST
from ffpool.ffmpeg.argv_base import PROTOCOL_WHITELIST as PROTOCOL_WHITELIST
from ffpool.ffmpeg.argv_base import FFmpegPlan as FFmpegPlan
from ffpool.ffmpeg.argv_base import PlannedOutput as PlannedOutput
from ffpool.ffmpeg.argv_base import Tool as Tool
from ffpool.ffmpeg.argv_base import file_url as file_url
from ffpool.ffmpeg.argv_base import head as _head
from ffpool.ffmpeg.argv_base import input_args as _input
from ffpool.ffmpeg.argv_base import pixel_limit as _pixel_limit
from ffpool.ffmpeg.argv_base import threads as _threads
from ffpool.ffmpeg.argv_base import whitelists as _whitelists
from ffpool.ffmpeg.binaries import Binaries
from ffpool.ffmpeg.codecs import num
from ffpool.settings import Settings
from ffpool.storage.media import content_type

_TRIM_CONTAINERS = {
    ".mp4": Container.MP4,
    ".m4v": Container.MP4,
    ".mov": Container.MOV,
    ".mkv": Container.MKV,
    ".webm": Container.WEBM,
}


def probe_argv(binaries: Binaries, path: Path, max_pixels: int | None = None) -> tuple[str, ...]:
    """ffprobe of `path`; with `max_pixels`, its decoders refuse larger frames (an input's
    probe decodes a first frame: it must not decode a bomb itself)."""
    return (
        *binaries.prefix,
        binaries.ffprobe,
        *["-v", "error", "-hide_banner"],
        *_pixel_limit(max_pixels),
        *_whitelists(),
        *["-show_format", "-show_streams", "-of", "json"],
        file_url(path),
    )


def build_plan(
    op: Operation,
    src: Path,
    job_dir: Path,
    binaries: Binaries,
    settings: Settings,
    info: MediaInfo | None = None,
) -> FFmpegPlan:
    """The process that performs `op` on the local file `src`, writing under `job_dir`;
    `info` (the input's probe) is needed by a ladder, whose renditions follow the input."""
    match op:
        case ProbeOp():
            argv = probe_argv(binaries, src, settings.max_input_pixels)
            return FFmpegPlan(tool=Tool.FFPROBE, argv=argv)
        case ThumbnailOp():
            return _thumbnail(op, src, job_dir, binaries, settings)
        case TranscodeOp():
            return _transcode(op, src, job_dir, binaries, settings)
        case ExtractAudioOp():
            return _extract_audio(op, src, job_dir, binaries, settings)
        case TrimOp():
            return _trim(op, src, job_dir, binaries, settings)
        case LadderOp():
            if info is None:
                raise ValueError("a ladder's plan needs the input's probe")
            return ladder.one_pass_plan(op, info, src, job_dir, binaries, settings)


def _output(muxer: str, out: PlannedOutput, settings: Settings) -> list[str]:
    # Input metadata (GPS position, device, names) is not carried into outputs, and chapters
    # describe the source's timeline, which a trim or thumbnail does not keep.
    return [
        *["-map_metadata", "-1", "-map_chapters", "-1"],
        *_threads(settings),
        *("-fs", str(settings.max_output_bytes)),
        *("-f", muxer, file_url(out.temp_path)),
    ]


def planned_output(job_dir: Path, name: str) -> PlannedOutput:
    if not job_dir.is_absolute():
        raise ValueError(f"not an absolute path: {job_dir}")
    return PlannedOutput(
        name=name,
        temp_path=job_dir / f".{name}.part",
        final_path=job_dir / name,
        content_type=content_type(name),
    )


def _thumbnail(
    op: ThumbnailOp, src: Path, job_dir: Path, binaries: Binaries, settings: Settings
) -> FFmpegPlan:
    out = planned_output(job_dir, f"thumbnail.{op.format.value}")
    scale = codecs.thumbnail_scale(op.width, op.height)
    argv = [
        *_head(binaries, settings),
        *_input(src, settings, op.time),
        *["-map", "0:v:0", "-frames:v", "1"],
        *(["-vf", scale] if scale else []),
        *codecs.IMAGE_ENCODERS[op.format],
        *["-update", "1"],
        *_output("image2", out, settings),
    ]
    return FFmpegPlan(tool=Tool.FFMPEG, argv=tuple(argv), outputs=(out,), track_percent=False)


def _transcode(
    op: TranscodeOp, src: Path, job_dir: Path, binaries: Binaries, settings: Settings
) -> FFmpegPlan:
    out = planned_output(job_dir, f"output.{op.container.value}")
    argv = [
        *_head(binaries, settings),
        *_input(src, settings),
        *codecs.transcode_args(op),
        *_output(codecs.MUXERS[op.container], out, settings),
    ]
    return FFmpegPlan(tool=Tool.FFMPEG, argv=tuple(argv), outputs=(out,), probe_output=True)


def _extract_audio(
    op: ExtractAudioOp, src: Path, job_dir: Path, binaries: Binaries, settings: Settings
) -> FFmpegPlan:
    encoder, muxer, extension, lossless = codecs.AUDIO_FORMATS[op.format]
    out = planned_output(job_dir, f"audio.{extension}")
    bitrate = [] if lossless else ["-b:a", f"{op.bitrate_kbps}k"]
    argv = [
        *_head(binaries, settings),
        *_input(src, settings),
        *("-map", "0:a:0", "-c:a", encoder),
        *bitrate,
        *_output(muxer, out, settings),
    ]
    return FFmpegPlan(tool=Tool.FFMPEG, argv=tuple(argv), outputs=(out,), probe_output=True)


def trim_container(src: Path) -> Container:
    """Keep the input's container when we know it (by our own path's suffix), else Matroska,
    which carries almost any codec a stream copy can bring."""
    return _TRIM_CONTAINERS.get(src.suffix.lower(), Container.MKV)


def _trim(
    op: TrimOp, src: Path, job_dir: Path, binaries: Binaries, settings: Settings
) -> FFmpegPlan:
    container = trim_container(src)
    out = planned_output(job_dir, f"trim.{container.value}")
    if op.mode is TrimMode.COPY:
        # A copy starts at the keyframe before `start`: MP4/MOV hide the lead-in with an edit
        # list (so no -avoid_negative_ts, which would make it visible); Matroska keeps it.
        codec_args = ["-map", "0:v:0?", "-map", "0:a:0?", "-c", "copy"]
    else:
        codec_args = codecs.transcode_args(_reencode_for(container))
    argv = [
        *_head(binaries, settings),
        *_input(src, settings, op.start),
        *("-t", num(op.duration)),
        *codec_args,
        *_output(codecs.MUXERS[container], out, settings),
    ]
    return FFmpegPlan(
        tool=Tool.FFMPEG,
        argv=tuple(argv),
        outputs=(out,),
        expected_duration_s=op.duration,
        input_seek_s=op.start,
        probe_output=True,
    )


def _reencode_for(container: Container) -> TranscodeOp:
    if container is Container.WEBM:
        return TranscodeOp(
            container=container, video_codec=VideoCodec.VP9, audio_codec=AudioCodec.OPUS
        )
    return TranscodeOp(container=container)
