"""A finished run's output files, checked before they are committed: blocking file calls."""

from __future__ import annotations

import os

from ffpool.ffmpeg import outcome
from ffpool.ffmpeg.argv import PlannedOutput


def finalize(outputs: tuple[PlannedOutput, ...], max_bytes: int) -> list[int]:
    """Blocking: check each temporary output, then rename it to its name (in the run's
    scratch directory: the commit publishes it)."""
    sizes = []
    for out in outputs:
        size = _size(out)
        failure = outcome.size_failure(out.name, size, max_bytes)
        if failure is not None:
            raise failure
        sizes.append(size or 0)
    for out in outputs:
        os.replace(out.temp_path, out.final_path)
    return sizes


def _size(out: PlannedOutput) -> int | None:
    try:
        return out.temp_path.stat().st_size
    except FileNotFoundError:
        return None
