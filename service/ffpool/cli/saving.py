"""Where a job's outputs are saved on the client's machine: names that never overwrite an
earlier run's (`<input-stem>.<op>.<ext>`, then `.1`, `.2`…), or exactly `-o PATH`.

A job with one output is one file; a job with several (a ladder's package) is one directory
named the same way, holding the outputs under their own names. The names are decided by pure
functions (`input_stem`, `target_for`); `reserve` then claims the first free one by creating
it exclusively, so two runs at the same moment never pick the same name either.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final
from urllib.parse import unquote, urlsplit

from ffpool.cli.untrusted import UnsafeName, extension, leaf, name_part
from ffpool.client.session import Client
from ffpool.domain.events import OutputFile

# Past this many earlier runs of the same input and operation, give up rather than loop on.
MAX_NUMBERED: Final = 10_000
FALLBACK_STEM: Final = "output"


def add_save_flags(p: argparse.ArgumentParser, *, out_help: str, dir_help: str) -> None:
    """`-o/--out PATH` (exact) and `--output-dir DIR` (never over an earlier file), the same
    for every command that saves outputs; `local_target` reads them."""
    p.add_argument("-o", "--out", metavar="PATH", help=out_help)
    p.add_argument("--output-dir", type=Path, default=Path("."), metavar="DIR", help=dir_help)


def input_stem(source: str) -> str:
    """The stem of the last component of a path, URL or s3:// key: `dir/clip.mp4` → `clip`,
    `https://cdn.example.com/v/clip.mp4?sig=1` → `clip`, `s3://bucket/a/b.mov` → `b`."""
    path = unquote(urlsplit(source).path) if "://" in source else source
    name = PurePosixPath(path.replace("\\", "/").rstrip("/")).name
    stem = PurePosixPath(name).stem if name not in ("", ".", "..") else ""
    return stem.strip() or FALLBACK_STEM


@dataclass(frozen=True)
class Target:
    """Where a job's outputs go. `exact`: this one path (the user named it; overwritten);
    else the numbered candidates `<parent>/<base><ext>`, `<base>.1<ext>`, … in turn."""

    parent: Path
    base: str
    ext: str
    is_dir: bool
    exact: bool

    def candidate(self, n: int) -> Path:
        if self.exact:
            return self.parent / self.base
        return self.parent / (f"{self.base}{self.ext}" if n == 0 else f"{self.base}.{n}{self.ext}")


def target_for(
    names: Sequence[str],
    *,
    stem: str,
    op: str,
    output_dir: Path,
    exact: Path | None = None,
    exact_is_dir: bool = False,
) -> Target:
    """Where outputs with these `names` go. `-o PATH` names the file (one output) or the
    directory (several) exactly; an existing directory given as `-o` for one output receives
    it under the numbered name, like `cp file dir/`. Every part from the server (the
    operation, the outputs' names and extensions) is checked first: UnsafeName."""
    single = len(names) == 1
    for name in names:
        leaf(name)
    ext = extension("extension", PurePosixPath(names[0]).suffix) if single else ""
    op = name_part("operation", op)
    stem = leaf(stem)
    if exact is not None and not (single and exact_is_dir):
        return Target(exact.parent, exact.name, "", is_dir=not single, exact=True)
    parent = exact if exact is not None else output_dir
    return Target(parent, f"{stem}.{op}", ext, is_dir=not single, exact=False)


def local_target(out: str | None, output_dir: Path, count: int) -> tuple[Path | None, Path]:
    """`-o` as typed → (the exact path, the directory) for `count` outputs: `-o clips/`, with
    its trailing slash, is a directory to save one output into, like `--output-dir clips`."""
    if out is None:
        return None, output_dir
    if count == 1 and out.endswith(("/", os.sep)):
        return None, Path(out)
    return Path(out), output_dir


def inside(directory: Path, name: str) -> Path:
    """An output's file in a package directory; a name that would leave it is refused."""
    return within(directory, directory / leaf(name))


def within(directory: Path, path: Path) -> Path:
    """`path`, checked to resolve inside `directory` (no symbolic link leads it out)."""
    if not path.resolve().is_relative_to(directory.resolve()):
        raise UnsafeName("path", str(path))
    return path


def reserve(target: Target) -> Path:
    """Claim the target's first free name by creating it (an empty file or a directory)
    exclusively; an exact target is taken as it is."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exact:
        if target.is_dir:
            target.candidate(0).mkdir(exist_ok=True)
        return target.candidate(0)
    for n in range(MAX_NUMBERED):
        path = within(target.parent, target.candidate(n))
        try:
            if target.is_dir:
                path.mkdir()
            else:
                path.open("x").close()
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"{target.candidate(0)} and {MAX_NUMBERED - 1} numbered names exist")


def _release(path: Path) -> None:
    """Undo a reservation that received nothing (an empty file or an empty directory)."""
    with contextlib.suppress(OSError):
        if path.is_dir():
            path.rmdir()
        elif path.stat().st_size == 0:
            path.unlink()


async def save_outputs(
    client: Client,
    outputs: list[OutputFile],
    *,
    stem: str,
    op: str,
    output_dir: Path,
    exact: Path | None = None,
) -> list[Path]:
    """Save every output; returns the paths written, in the outputs' order."""
    if not outputs:
        return []
    exact_is_dir = exact is not None and await asyncio.to_thread(exact.is_dir)
    target = target_for(
        [o.name for o in outputs],
        stem=stem,
        op=op,
        output_dir=output_dir,
        exact=exact,
        exact_is_dir=exact_is_dir,
    )
    where = await asyncio.to_thread(reserve, target)
    try:
        if not target.is_dir:
            return [await client.save(outputs[0], where)]
        paths = await asyncio.to_thread(lambda: [inside(where, o.name) for o in outputs])
        return [await client.save(o, path) for o, path in zip(outputs, paths, strict=True)]
    except BaseException:
        if not target.exact:
            await asyncio.to_thread(_release, where)
        raise
