"""The tokens file: parse it (pure) and match a presented token against it in constant time.

Format (docs/security.md): one token a line, `<tenant> sha256:<64 hex>`; blank lines and lines
starting with `#` are ignored. Only hashes are stored: the file is not a secret worth stealing
on its own, and `ffpool token create` prints both the token and its line.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from ffpool.domain.jobs import ANONYMOUS_TENANT, TenantName

DIGEST_PREFIX: Final = "sha256:"
TOKEN_PREFIX: Final = "ffp_"  # noqa: S105 - a prefix that makes leaked tokens greppable
# 32 random bytes: the same strength as the SHA-256 the file stores.
TOKEN_BYTES: Final = 32
# Longer presented tokens are refused before hashing: ours are 47 characters.
MAX_TOKEN_CHARS: Final = 512
Digest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class TokenEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    tenant: TenantName
    digest: Digest


class TokensFile(BaseModel):
    """What a tokens file holds; `bad_lines` are 1-based line numbers, never their content
    (a mistyped line may be a raw token)."""

    model_config = ConfigDict(frozen=True)

    entries: tuple[TokenEntry, ...] = ()
    bad_lines: tuple[int, ...] = ()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode(errors="surrogateescape")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def file_line(tenant: str, token: str) -> str:
    """The tokens-file line for a token (validated: a bad tenant raises ValueError)."""
    entry = _entry(tenant, DIGEST_PREFIX + hash_token(token))
    if entry is None:
        raise ValueError("a tenant is a DNS label (a-z, 0-9, '-'), and not 'anonymous'")
    return f"{entry.tenant} {DIGEST_PREFIX}{entry.digest}"


def _entry(tenant: str, digest: str) -> TokenEntry | None:
    if tenant == ANONYMOUS_TENANT or not digest.startswith(DIGEST_PREFIX):
        return None
    try:
        return TokenEntry(tenant=tenant, digest=digest.removeprefix(DIGEST_PREFIX))
    except ValidationError:
        return None


def parse_tokens(text: str) -> TokensFile:
    entries: list[TokenEntry] = []
    bad: list[int] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        entry = _entry(fields[0], fields[1]) if len(fields) == 2 else None
        if entry is None:
            bad.append(number)
        else:
            entries.append(entry)
    return TokensFile(entries=tuple(entries), bad_lines=tuple(bad))


def match(entries: tuple[TokenEntry, ...], token: str) -> TokenEntry | None:
    """The entry whose hash is the token's. Every entry is compared, with compare_digest, so
    the time taken says nothing about which entry (or how much of one) matched."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    presented = hash_token(token).encode()
    found: TokenEntry | None = None
    for entry in entries:
        if hmac.compare_digest(entry.digest.encode(), presented) and found is None:
            found = entry
    return found
