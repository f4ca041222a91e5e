"""What one FFmpeg or ffprobe run may cost: frame size, memory and CPU time.

- Frame size: every input is probed first (with the decoders' own pixel limit set, so the probe
  never decodes a bomb itself) and refused when a video stream's width x height is over
  MAX_INPUT_PIXELS; FFmpeg then runs with the same decoder limit, for frames the probe did not
  see (a resolution change mid-stream).
- Memory and CPU: rlimits (RLIMIT_AS, RLIMIT_CPU) must be set in the child between fork and
  exec, where Python's `preexec_fn` is unsafe in a threaded process (pdeathsig.py explains).
  `resource.prlimit(pid)` after the spawn would race with FFmpeg's first allocations. So the
  argv goes through util-linux's `prlimit --as=… --cpu=… -- ffmpeg …`, which sets its own
  limits and execs FFmpeg (it inherits them); behind `setpriv --pdeathsig`, which composes.

Measurements behind the defaults: docs/security.md, "Limits: what one FFmpeg run may cost".
Everything here is pure but `find_prlimit`.
"""

from __future__ import annotations

import dataclasses
import functools
import shutil
import subprocess
import sys
from typing import Final

from ffpool import logs
from ffpool.domain.events import MediaInfo
from ffpool.ffmpeg.binaries import Binaries, BinariesNotFound
from ffpool.settings import Settings

log = logs.get(__name__)

# libavutil/imgutils.c (av_image_check_size2): a decoder refusing a frame over -max_pixels.
PIXEL_LIMIT_NEEDLE: Final = "exceeds specified max pixel count"
# Decoders check the padded frame (an 8160-pixel-wide PNG counts as 8192), so they get twice
# the limit: a backstop; the probe's check on the real dimensions is the exact one.
DECODER_PIXEL_FACTOR: Final = 2
# RLIMIT_CPU: at the soft limit the kernel sends SIGXCPU, which FFmpeg handles like SIGTERM
# (it stops and says "received signal 24"); SIGKILL follows at the hard limit, this much later.
# The kernel repeats SIGXCPU every CPU second past the soft limit: an FFmpeg still stopping
# after the fourth exits at once with fftools/ffmpeg.c's "Received > 3 system signals" (its
# only other source would be repeated SIGTERMs, which ffpool never sends: process.py sends one,
# then SIGKILL).
CPU_KILL_GRACE_S: Final = 10
CPU_LIMIT_NEEDLES: Final = ("received signal 24", "Received > 3 system signals")
SIGXCPU: Final = 24
# What FFmpeg and its libraries print when an allocation fails (libavutil's ENOMEM text,
# x264's "malloc of size N failed", a C++ library's std::bad_alloc).
MEMORY_NEEDLES: Final = ("Cannot allocate memory", "malloc of size", "std::bad_alloc")


def decoder_max_pixels(max_pixels: int) -> int:
    # FFmpeg's option is an int: INT_MAX at most.
    return min(max_pixels * DECODER_PIXEL_FACTOR, 2**31 - 1)


def pixel_problem(info: MediaInfo, stderr: str, max_pixels: int) -> str | None:
    """Why a probed input is refused for its frame size, or None. `stderr` is the probe's: a
    decoder that refused a frame leaves its dimensions unknown (0) but says so there."""
    for stream in info.streams:
        width, height = stream.width or 0, stream.height or 0
        if stream.codec_type == "video" and width * height > max_pixels:
            return (
                f"the input's video is {width}x{height} ({width * height} pixels), over the "
                f"limit of {max_pixels} pixels"
            )
    if PIXEL_LIMIT_NEEDLE in stderr:
        return f"the input has a frame over the limit of {max_pixels} pixels"
    return None


def rlimit_args(settings: Settings) -> tuple[str, ...]:
    """`prlimit` options for the configured limits (0 disables one)."""
    args = []
    if settings.ffmpeg_max_memory_bytes:
        args.append(f"--as={settings.ffmpeg_max_memory_bytes}")
    if settings.ffmpeg_max_cpu_seconds:
        soft = settings.ffmpeg_max_cpu_seconds
        args.append(f"--cpu={soft}:{soft + CPU_KILL_GRACE_S}")
    return tuple(args)


def prefix(prlimit: str, settings: Settings) -> tuple[str, ...]:
    args = rlimit_args(settings)
    return (prlimit, *args, "--") if args else ()


def limit_failure(exit_code: int, stderr: str) -> str | None:
    """Which resource limit a failed run hit, as the client's message, or None."""
    if exit_code == -SIGXCPU or any(needle in stderr for needle in CPU_LIMIT_NEEDLES):
        return "FFmpeg used up its CPU time limit (FFMPEG_MAX_CPU_SECONDS)"
    if any(needle in stderr for needle in MEMORY_NEEDLES):
        return "FFmpeg ran out of memory (its limit is FFMPEG_MAX_MEMORY_BYTES)"
    return None


def bound(binaries: Binaries, settings: Settings) -> Binaries:
    """`binaries` with the rlimit prefix every run goes behind; raises BinariesNotFound when
    limits are configured and cannot be applied: jobs then fail (`internal_error`, saying
    why) rather than run unbounded."""
    if not rlimit_args(settings):
        return binaries
    prlimit = find_prlimit()
    if prlimit is None:
        if sys.platform.startswith("linux"):
            raise BinariesNotFound(
                "prlimit (util-linux) is needed for FFMPEG_MAX_MEMORY_BYTES and "
                "FFMPEG_MAX_CPU_SECONDS: install util-linux, or set both to 0"
            )
        log.warning("prlimit is unavailable: FFmpeg runs without memory and CPU limits")
        return binaries
    return dataclasses.replace(binaries, prefix=prefix(prlimit, settings))


@functools.cache
def find_prlimit() -> str | None:
    """util-linux's prlimit, checked once per process (it must run a command)."""
    path = shutil.which("prlimit")
    if path is None:
        return None
    try:
        check = subprocess.run(
            [path, "--cpu=unlimited", "--", "true"], capture_output=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return path if check.returncode == 0 else None
