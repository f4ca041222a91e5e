"""The pool's signing key: download links, browser tickets and keyed job ids are HMACs with it.

Every replica of a pool must hold the same key, or a link signed by one replica is refused by
the next and a keyed job resubmitted to another replica gets another id (and runs twice). The
key comes from SIGNING_KEY_FILE (mounted from a Secret on Kubernetes). Without one, it is the
key under MEDIA_ROOT (`.ffpool-signing-key`, made by the first process that needs it, readable
by the service's user only): replicas must share MEDIA_ROOT anyway (docs/rabbitmq.md
"Exactly-once effects"), so they agree on it with no set-up, and it survives restarts.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Final

from ffpool.settings import Settings

# Shorter keys are refused: 16 bytes is the least HMAC-SHA256 should be keyed with (RFC 2104
# §3 asks for at least the hash's output length, 32; we accept 16 from a hand-made file).
MIN_KEY_BYTES: Final = 16
KEY_FILE: Final = ".ffpool-signing-key"


class SigningKeyError(Exception):
    pass


def load_signing_key(settings: Settings) -> bytes:
    """The key from SIGNING_KEY_FILE (surrounding whitespace ignored), else MEDIA_ROOT's.
    Reads a small file: call it at start-up (or in a thread), not per request."""
    path = settings.signing_key_file
    where = f"SIGNING_KEY_FILE {path}" if path else str(settings.media_root / KEY_FILE)
    try:
        key = _shared_key(settings.media_root / KEY_FILE) if path is None else path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read {where}: {exc}") from None
    if len(key.strip()) < MIN_KEY_BYTES:
        raise SigningKeyError(f"{where} holds fewer than {MIN_KEY_BYTES} bytes")
    return key.strip()


def _shared_key(path: Path) -> bytes:
    """Blocking: the key under MEDIA_ROOT, made if missing: written whole under a temporary
    name, then linked into place, so racing replicas all end up with the first one's key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        temp = path.with_name(f"{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_hex(32).encode())
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
        temp.unlink()
    return path.read_bytes()


def derive(key: bytes, purpose: str) -> bytes:
    """A sub-key per purpose, so a signature made for one thing never verifies as another."""
    return hmac.new(key, purpose.encode(), hashlib.sha256).digest()
