"""FFmpeg dies with its worker, however the worker dies (kill -9 included).

FFmpeg runs in a session of its own (so a cancel or timeout reaches everything it started), so
nothing else stops it when the worker vanishes: it would keep writing into a run's files. The
kernel's parent-death signal, prctl(PR_SET_PDEATHSIG), kills it instead, but it has to be set
in the child, between fork and exec. Python's `preexec_fn` runs arbitrary Python there, which
is not safe in a process with threads (the marker file thread, to_thread workers: a lock held
by another thread at fork time deadlocks the child). So the child execs a tiny C trampoline,
util-linux's `setpriv --pdeathsig KILL -- ffmpeg …`, which calls prctl and then execs FFmpeg
(the setting survives exec for non-setuid programs). `start_new_session` stays as it is: it
is done by the fork machinery itself, not in Python.

The signal fires when the *thread* that forked the child ends: here always the event loop's
thread, which lives as long as the worker. Where setpriv is missing (or too old, < 2.33), runs
go without it and a warning says so once.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from collections.abc import Sequence

from ffpool import logs

log = logs.get(__name__)

SIGNAL = "KILL"


def wrap(argv: Sequence[str], prefix: Sequence[str] | None = None) -> list[str]:
    """`argv` behind the trampoline (pure: `prefix` given), or as it is without one."""
    if prefix is None:
        prefix = trampoline()
    return [*prefix, *argv]


@functools.cache
def trampoline() -> tuple[str, ...]:
    """The command prefix that sets the parent-death signal, checked once per process."""
    if not sys.platform.startswith("linux"):
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is not None:
        prefix = (setpriv, "--pdeathsig", SIGNAL, "--")
        try:
            probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=5)
            if probe.returncode == 0:
                return prefix
        except (OSError, subprocess.TimeoutExpired):
            pass
    log.warning("setpriv --pdeathsig is unavailable: FFmpeg may outlive a killed worker")
    return ()
