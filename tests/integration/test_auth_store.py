"""The tokens file on disk: reloaded without a restart (as a Kubernetes Secret volume swaps
it), read off the event loop, and no token ever in a log line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ffpool import logs
from ffpool.auth.identity import Caller
from ffpool.auth.store import TokensFileError, TokenStore
from ffpool.auth.tokens import file_line, new_token
from tests.polling import eventually

pytest_plugins = ["tests.integration.auth_fixtures"]


async def test_a_rewritten_file_is_picked_up_and_the_old_token_stops(tmp_path: Path) -> None:
    old, new = new_token(), new_token()
    path = tmp_path / "tokens"
    path.write_text(file_line("acme", old) + "\n")
    store = TokenStore(path, check_interval=0.1)
    await store.load()
    assert await store.lookup(old) == Caller(tenant="acme")
    assert await store.lookup(new) is None

    # As a Secret volume does: a new file, swapped in by rename (new inode).
    swap = tmp_path / "tokens.new"
    swap.write_text(f"# rotated\n{file_line('globex', new)}\n")
    os.replace(swap, path)

    async def new_works() -> bool:
        return await store.lookup(new) == Caller(tenant="globex")

    await eventually(new_works, timeout=10, what="the rotated token accepted")
    assert await store.lookup(old) is None


async def test_in_place_edit_is_picked_up(tmp_path: Path) -> None:
    first, second = new_token(), new_token()
    path = tmp_path / "tokens"
    path.write_text(file_line("acme", first) + "\n")
    store = TokenStore(path, check_interval=0.1)
    await store.load()
    with path.open("a") as handle:
        handle.write(file_line("acme", second) + "\n")

    async def second_works() -> bool:
        return await store.lookup(second) is not None

    await eventually(second_works, timeout=10, what="the added token accepted")
    assert await store.lookup(first) == Caller(tenant="acme")


async def test_looks_at_most_once_per_interval(tmp_path: Path) -> None:
    token = new_token()
    path = tmp_path / "tokens"
    path.write_text(file_line("acme", token) + "\n")
    now = [100.0]
    store = TokenStore(path, clock=lambda: now[0])
    await store.load()
    path.write_text("")  # gone, but not looked at within the second
    assert await store.lookup(token) is not None
    now[0] += 1.0
    assert await store.lookup(token) is None


async def test_a_vanished_file_keeps_the_tokens_a_missing_one_stops_the_start(
    tmp_path: Path,
) -> None:
    token = new_token()
    path = tmp_path / "tokens"
    path.write_text(file_line("acme", token) + "\n")
    store = TokenStore(path, check_interval=0.0)
    await store.load()
    path.unlink()
    assert await store.lookup(token) == Caller(tenant="acme")
    with pytest.raises(TokensFileError):
        await TokenStore(tmp_path / "missing").load()


@pytest.mark.usefixtures("restore_logging")
async def test_no_token_in_any_log_line(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    logs.configure("DEBUG")
    good, pasted = new_token(), new_token()
    path = tmp_path / "tokens"
    # A raw token pasted by mistake: the bad line is reported by its number only.
    path.write_text(f"{file_line('acme', good)}\n{pasted}\nacme {pasted}\n")
    store = TokenStore(path, check_interval=0.0)
    await store.load()
    assert await store.lookup(good) is not None
    assert await store.lookup(pasted) is None
    out, err = capfd.readouterr()
    assert "lines='2,3'" in err
    for secret in (good, pasted):
        assert secret not in out + err
