"""The signing key every replica shares: SIGNING_KEY_FILE, else the one under MEDIA_ROOT."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ffpool.auth.keys import KEY_FILE, SigningKeyError, load_signing_key
from ffpool.settings import Settings


def test_replicas_sharing_media_root_agree_without_set_up(tmp_path: Path) -> None:
    one = Settings(media_root=tmp_path / "media", backend="rabbitmq")
    with ThreadPoolExecutor(8) as pool:  # racing first starts all end up with one key
        keys = set(pool.map(lambda _: load_signing_key(one), range(32)))
    assert len(keys) == 1
    key = keys.pop()
    assert len(key) >= 32
    made = tmp_path / "media" / KEY_FILE
    assert made.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in made.parent.iterdir()] == [KEY_FILE]  # no temporary left
    assert load_signing_key(Settings(media_root=tmp_path / "media")) == key  # restarts too
    assert load_signing_key(Settings(media_root=tmp_path / "other")) != key


def test_a_key_file_wins_and_short_ones_are_refused(tmp_path: Path) -> None:
    good, short = tmp_path / "good", tmp_path / "short"
    good.write_bytes(b"k" * 40 + b"\n")
    short.write_bytes(b"k" * 8)
    assert load_signing_key(Settings(media_root=tmp_path, signing_key_file=good)) == b"k" * 40
    with pytest.raises(SigningKeyError, match="fewer than"):
        load_signing_key(Settings(media_root=tmp_path, signing_key_file=short))
    assert not (tmp_path / KEY_FILE).exists()
