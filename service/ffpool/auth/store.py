"""The tokens file at run time: loaded at start-up, reloaded when it changes, without a restart.

A Kubernetes Secret volume swaps a symlink when the Secret changes, so the file's inode, size
or mtime changes; we look at most once a second (CHECK_INTERVAL_S), and read off the event loop.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, NamedTuple

from ffpool import logs
from ffpool.auth.identity import Caller
from ffpool.auth.tokens import TokenEntry, TokensFile, match, parse_tokens

log = logs.get(__name__)
CHECK_INTERVAL_S: Final = 1.0
# A tokens file is a few lines a tenant; anything this large is not one.
MAX_FILE_BYTES: Final = 4 * 1024 * 1024


class TokensFileError(Exception):
    """The tokens file cannot be read (at start-up this stops the process)."""


class Stamp(NamedTuple):
    inode: int
    size: int
    mtime_ns: int


def _stamp(path: Path) -> Stamp:
    st = os.stat(path)
    return Stamp(st.st_ino, st.st_size, st.st_mtime_ns)


def _read(path: Path) -> tuple[Stamp, TokensFile]:
    with path.open("rb") as handle:
        st = os.fstat(handle.fileno())
        if st.st_size > MAX_FILE_BYTES:
            raise TokensFileError(f"{path} is larger than {MAX_FILE_BYTES} bytes")
        text = handle.read(MAX_FILE_BYTES).decode(errors="replace")
    return Stamp(st.st_ino, st.st_size, st.st_mtime_ns), parse_tokens(text)


class TokenStore:
    def __init__(
        self,
        path: Path,
        clock: Callable[[], float] = time.monotonic,
        check_interval: float = CHECK_INTERVAL_S,
    ) -> None:
        self.path = path
        self.clock = clock
        self.check_interval = check_interval
        self.entries: tuple[TokenEntry, ...] = ()
        self._stamp: Stamp | None = None
        self._checked = float("-inf")

    async def load(self) -> None:
        """The first load: a missing or unreadable file is an error, not an empty store."""
        try:
            stamp, parsed = await asyncio.to_thread(_read, self.path)
        except OSError as exc:
            raise TokensFileError(f"cannot read AUTH_TOKENS_FILE {self.path}: {exc}") from None
        self._install(stamp, parsed)
        self._checked = self.clock()

    async def lookup(self, token: str) -> Caller | None:
        await self.refresh()
        entry = match(self.entries, token)
        return None if entry is None else Caller(tenant=entry.tenant)

    async def refresh(self) -> None:
        """Reload if the file changed; at most one look per interval, however many callers."""
        now = self.clock()
        if now - self._checked < self.check_interval:
            return
        self._checked = now  # before awaiting: concurrent callers do not look again
        try:
            if await asyncio.to_thread(_stamp, self.path) == self._stamp:
                return
            stamp, parsed = await asyncio.to_thread(_read, self.path)
        except (OSError, TokensFileError) as exc:
            # Keep serving the tokens we have: a Secret being swapped may vanish for a moment.
            log.warning("tokens file unreadable; keeping the previous tokens", error=str(exc))
            return
        self._install(stamp, parsed)

    def _install(self, stamp: Stamp, parsed: TokensFile) -> None:
        if parsed.bad_lines:
            log.warning(
                "tokens file has lines that are not `<tenant> sha256:<hex>`; ignored",
                path=str(self.path),
                lines=",".join(str(n) for n in parsed.bad_lines),
            )
        self.entries = parsed.entries
        self._stamp = stamp
        log.info(
            "tokens loaded",
            path=str(self.path),
            tokens=len(parsed.entries),
            tenants=len({e.tenant for e in parsed.entries}),
        )
