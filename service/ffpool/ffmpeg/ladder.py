"""The `ladder` operation: H.264 renditions of the input's video and AAC audio, packaged as
HLS and/or DASH (docs/ladders.md). Pure: rungs decided from the probe, argv lists built.

Every rung gets keyframes at the same output times (every `segment_seconds`, no scene-cut
keyframes), so the segments of all renditions start at the same instants and a player can
switch between them at any segment boundary; chunks of a chunked run keep that property.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from ffpool.domain.events import MediaInfo
from ffpool.domain.jobs import LadderOp
from ffpool.ffmpeg.argv_base import (
    FFmpegPlan,
    Tool,
    file_url,
    head,
    input_args,
    threads,
    whitelists,
)
from ffpool.ffmpeg.binaries import Binaries
from ffpool.ffmpeg.codecs import num
from ffpool.ffmpeg.ladder_mux import PACKAGE_DIR, muxer_args
from ffpool.ffmpeg.ladder_rungs import DEFAULT_LADDER as DEFAULT_LADDER
from ffpool.ffmpeg.ladder_rungs import LADDER_MAX_PIXELS as LADDER_MAX_PIXELS
from ffpool.ffmpeg.ladder_rungs import MAX_PACKAGE_FILES as MAX_PACKAGE_FILES
from ffpool.ffmpeg.ladder_rungs import Rung as Rung
from ffpool.ffmpeg.ladder_rungs import audio_count as audio_count
from ffpool.ffmpeg.ladder_rungs import check_package_size as check_package_size
from ffpool.ffmpeg.ladder_rungs import has_audio as has_audio
from ffpool.ffmpeg.ladder_rungs import resolve_rungs as resolve_rungs
from ffpool.settings import Settings

# Peak bitrate and VBV buffer relative to the average, as in the guide the ladder follows.
MAXRATE_FACTOR: Final = 1.07
BUFSIZE_FACTOR: Final = 1.5


def _keyframes(op: LadderOp) -> list[str]:
    # Forced at every segment boundary of output time, and nowhere chosen by content
    # (sc_threshold 0): every rung cuts its segments at the same instants. Output time starts
    # at 0 for any input (no -copyts), a chunk's included.
    expr = f"expr:gte(t,n_forced*{num(op.segment_seconds)})"
    return ["-force_key_frames", expr, "-sc_threshold", "0"]


def _rung_codec(rung: Rung, spec: str) -> list[str]:
    """Encoder options of output stream `spec` (e.g. `v:0`, or `v` for a file of its own)."""
    kbps = rung.video_bitrate_kbps
    profile = [f"-profile:{spec}", rung.profile.value] if rung.profile is not None else []
    return [
        *(f"-b:{spec}", f"{kbps}k"),
        *(f"-maxrate:{spec}", f"{round(kbps * MAXRATE_FACTOR)}k"),
        *(f"-bufsize:{spec}", f"{round(kbps * BUFSIZE_FACTOR)}k"),
        *profile,
    ]


def _scale(rung: Rung) -> str:
    # No setsar: the scaler adjusts each rung's sample aspect so that every rung keeps the
    # input's display aspect exactly (the DASH muxer requires it of an adaptation set),
    # whatever the rounding to even sizes.
    return f"scale={rung.width}:{rung.height}"


def _split_graph(rungs: Sequence[Rung]) -> str:
    """`[0:v:0]` split into one scaled output `[vK]` per rung."""
    if len(rungs) == 1:
        return f"[0:v:0]{_scale(rungs[0])}[v0]"
    taps = "".join(f"[s{k}]" for k in range(len(rungs)))
    scaled = ";".join(f"[s{k}]{_scale(r)}[v{k}]" for k, r in enumerate(rungs))
    return f"[0:v:0]split={len(rungs)}{taps};{scaled}"


def _video_encoder(op: LadderOp, settings: Settings) -> list[str]:
    # 8-bit 4:2:0: what every H.264 player decodes, whatever the input's pixel format.
    return [
        "-c:v",
        "libx264",
        "-preset",
        op.preset.value,
        "-pix_fmt",
        "yuv420p",
        *threads(settings),
    ]


def _audio_encoder(op: LadderOp, audios: int) -> list[str]:
    bitrates = [
        arg
        for k, kbps in enumerate(op.audio_bitrates_kbps[:audios])
        for arg in (f"-b:a:{k}", f"{kbps}k")
    ]
    # Stereo: what every HLS/DASH player decodes (docs/ladders.md).
    return ["-c:a", "aac", "-ac", "2", *bitrates] if audios else []


def ladder_video_argv(
    binaries: Binaries,
    settings: Settings,
    op: LadderOp,
    rungs: Sequence[Rung],
    src: Path,
    outs: Sequence[Path],
) -> tuple[str, ...]:
    """Video only, rung K into the Matroska file `outs[K]` (a chunk sub-job's encode)."""
    if len(outs) != len(rungs):
        raise ValueError("one output per rung")
    per_rung = [
        arg
        for k, (rung, out) in enumerate(zip(rungs, outs, strict=True))
        for arg in (
            *("-map", f"[v{k}]"),
            *_video_encoder(op, settings),
            *_keyframes(op),
            *_rung_codec(rung, "v"),
            *("-an", "-map_metadata", "-1", "-map_chapters", "-1"),
            *("-f", "matroska", file_url(out)),
        )
    ]
    argv = [
        *head(binaries, settings),
        *input_args(src, settings),
        *("-filter_complex", _split_graph(rungs)),
        *per_rung,
    ]
    return tuple(argv)


def _audio_muxer(path: Path) -> str:
    return "matroska" if path.suffix.lower() == ".mkv" else "mp4"


def ladder_audio_argv(
    binaries: Binaries, settings: Settings, op: LadderOp, src: Path, outs: Sequence[Path]
) -> tuple[str, ...]:
    """One AAC file per `op.audio_bitrates_kbps` entry, `outs[K]` (`.m4a`, or `.mkv`)."""
    if len(outs) != len(op.audio_bitrates_kbps):
        raise ValueError("one output per audio bitrate")
    per_output = [
        arg
        for kbps, out in zip(op.audio_bitrates_kbps, outs, strict=True)
        for arg in (
            *("-map", "0:a:0", "-vn", "-c:a", "aac", "-ac", "2", "-b:a", f"{kbps}k"),
            *("-map_metadata", "-1", "-map_chapters", "-1", *threads(settings)),
            *("-f", _audio_muxer(out), file_url(out)),
        )
    ]
    return (*head(binaries, settings), *input_args(src, settings), *per_output)


def package_argv(
    binaries: Binaries,
    settings: Settings,
    op: LadderOp,
    rung_files: Sequence[Path],
    audio_files: Sequence[Path],
    output_dir: Path,
    video_offset_s: float = 0.0,
) -> tuple[str, ...]:
    """Stream copy of encoded rungs (highest first, as resolve_rungs orders them) and audio
    renditions into the package in `output_dir`. The bitrates are given again: a copied
    stream has none of its own, and the playlists' BANDWIDTH comes from them.
    `video_offset_s`: how much later than the audio the input's video starts (one pass keeps
    that gap; rungs encoded from chunks start at zero)."""
    offset = ["-itsoffset", num(video_offset_s)] if video_offset_s > 0 else []
    inputs = [arg for path in rung_files for arg in (*offset, *whitelists(), "-i", file_url(path))]
    inputs += [arg for path in audio_files for arg in (*whitelists(), "-i", file_url(path))]
    maps = [arg for k in range(len(rung_files)) for arg in ("-map", f"{k}:v:0")]
    maps += [arg for j in range(len(audio_files)) for arg in ("-map", f"{len(rung_files) + j}:a:0")]
    bitrates = _copied_bitrates(op, rung_files, len(audio_files))
    return (
        *head(binaries, settings),
        *inputs,
        *maps,
        *("-c", "copy", *bitrates, "-map_metadata", "-1", "-map_chapters", "-1"),
        *muxer_args(op, len(rung_files), len(audio_files), output_dir),
    )


def _copied_bitrates(op: LadderOp, rung_files: Sequence[Path], audios: int) -> list[str]:
    # Explicit renditions are all kept; the default ladder keeps its lowest rungs (the one
    # rung of an input below them is declared at the smallest rung's rate).
    chosen = (op.renditions or DEFAULT_LADDER[-len(rung_files) :]) if rung_files else ()
    kbps = sorted((r.video_bitrate_kbps for r in chosen), reverse=True)
    video = [arg for k, b in enumerate(kbps[: len(rung_files)]) for arg in (f"-b:v:{k}", f"{b}k")]
    audio = [
        arg for k, b in enumerate(op.audio_bitrates_kbps[:audios]) for arg in (f"-b:a:{k}", f"{b}k")
    ]
    return [*video, *audio]


def one_pass_plan(
    op: LadderOp,
    info: MediaInfo,
    src: Path,
    job_dir: Path,
    binaries: Binaries,
    settings: Settings,
) -> FFmpegPlan:
    """Every rung and audio rendition encoded in ONE FFmpeg run straight into the package."""
    rungs = resolve_rungs(op, info)
    audios = audio_count(op, info)
    check_package_size(op, len(rungs), audios, info)
    output_dir = job_dir / PACKAGE_DIR
    video = [
        arg
        for k, rung in enumerate(rungs)
        for arg in ("-map", f"[v{k}]", *_rung_codec(rung, f"v:{k}"))
    ]
    argv = [
        *head(binaries, settings),
        *input_args(src, settings),
        *("-filter_complex", _split_graph(rungs)),
        *video,
        *[arg for _ in range(audios) for arg in ("-map", "0:a:0")],
        *_video_encoder(op, settings),
        *_keyframes(op),
        *_audio_encoder(op, audios),
        *("-map_metadata", "-1", "-map_chapters", "-1"),
        *muxer_args(op, len(rungs), audios, output_dir),
    ]
    return FFmpegPlan(tool=Tool.FFMPEG, argv=tuple(argv), output_dir=output_dir)
