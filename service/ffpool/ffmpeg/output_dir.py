"""A finished run's outputs: the files the plan named, or the files a package's muxer wrote
into its directory (a ladder: ffmpeg/ladder.py), listed and checked; and the metadata of the
first output. Blocking calls run in a thread.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from ffpool import logs
from ffpool.domain.events import FailureCode, MediaInfo
from ffpool.ffmpeg import outcome
from ffpool.ffmpeg.argv_base import FFmpegPlan, PlannedOutput
from ffpool.ffmpeg.binaries import Binaries
from ffpool.ffmpeg.ladder_rungs import MAX_PACKAGE_FILES
from ffpool.ffmpeg.outputs import finalize
from ffpool.ffmpeg.probe import ProbeError, probe, read_image_info
from ffpool.storage.media import content_type, output_name_problem

log = logs.get(__name__)


def prepare(plan: FFmpegPlan) -> None:
    """Blocking: the package's directory, which the muxers do not create themselves."""
    if plan.output_dir is not None:
        plan.output_dir.mkdir(mode=0o755, exist_ok=True)


def planned_outputs(plan: FFmpegPlan, max_bytes: int) -> tuple[PlannedOutput, ...]:
    """Blocking: the plan's outputs; for a package, the files found in its directory, each
    to be renamed into the run's scratch directory (the directory's parent)."""
    if plan.output_dir is None:
        return plan.outputs
    return collect(plan.output_dir, plan.output_dir.parent, MAX_PACKAGE_FILES, max_bytes)


def finalized(plan: FFmpegPlan, max_bytes: int) -> tuple[tuple[PlannedOutput, ...], list[int]]:
    """Blocking: the run's outputs, checked and renamed to their names, and their sizes."""
    outputs = planned_outputs(plan, max_bytes)
    return outputs, finalize(outputs, max_bytes)


def _order(name: str) -> tuple[int, str]:
    """The master playlist first, then the manifest, the playlists and the segments."""
    rank = {"master.m3u8": 0, "manifest.mpd": 1}.get(name, 2 if name.endswith(".m3u8") else 3)
    return rank, name


def collect(
    output_dir: Path, final_dir: Path, max_files: int, max_bytes: int
) -> tuple[PlannedOutput, ...]:
    """Blocking: every file FFmpeg wrote into `output_dir`, checked: a name we chose (the
    output-name rule), regular files only, at most `max_files`, at most `max_bytes` in all."""
    names = sorted(os.listdir(output_dir), key=_order)
    if not names:
        raise outcome.JobFailure(FailureCode.FFMPEG_ERROR, "FFmpeg wrote no package files")
    if len(names) > max_files:
        raise outcome.JobFailure(
            FailureCode.OUTPUT_TOO_LARGE,
            f"the package has {len(names)} files, over the limit of {max_files}",
        )
    total = 0
    for name in names:
        st = os.lstat(output_dir / name)
        if output_name_problem(name) or not stat.S_ISREG(st.st_mode):
            raise outcome.JobFailure(
                FailureCode.INTERNAL_ERROR, "FFmpeg wrote an unexpected file into the package"
            )
        total += st.st_size
    if total >= max_bytes:
        raise outcome.JobFailure(
            FailureCode.OUTPUT_TOO_LARGE,
            f"the package reached the output limit of {max_bytes} bytes",
        )
    return tuple(
        PlannedOutput(
            name=name,
            temp_path=output_dir / name,
            final_path=final_dir / name,
            content_type=content_type(name),
        )
        for name in names
    )


async def metadata(
    binaries: Binaries, plan: FFmpegPlan, timeout_s: float, job_id: str
) -> MediaInfo | None:
    """The first output's metadata; a job whose output cannot be probed still succeeded. A
    package has none (its files are parts, not media of their own)."""
    if not plan.outputs:
        return None
    path = plan.outputs[0].final_path
    if not plan.probe_output:
        info = await asyncio.to_thread(read_image_info, path)
        if info is not None:
            return info
    try:
        return await probe(binaries, path, timeout_s)
    except ProbeError as exc:
        log.warning("output probe failed", job_id=job_id, reason=exc.message)
        return None
