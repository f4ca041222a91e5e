"""The Content-Type of each output extension ffpool writes (downloads and `completed`)."""

from __future__ import annotations

from typing import Final

CONTENT_TYPES: Final = {
    "mp4": "video/mp4",
    "m4a": "audio/mp4",
    "webm": "video/webm",
    "mkv": "video/x-matroska",
    "mov": "video/quicktime",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "mp3": "audio/mpeg",
    "aac": "audio/aac",
    "opus": "audio/ogg",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "json": "application/json",
}


def content_type(name: str) -> str:
    """The Content-Type of an output by its extension (outputs only ever have ours)."""
    return CONTENT_TYPES.get(name.rpartition(".")[2].lower(), "application/octet-stream")
