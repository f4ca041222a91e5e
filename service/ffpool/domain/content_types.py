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
    # An HLS/DASH package (docs/ladders.md): playlists (RFC 8216 section 4), the MPD (ISO/IEC
    # 23009-1 annex C), fMP4 media segments (`video/iso.segment`, IANA) and MPEG-TS segments.
    # Init segments are `.mp4`.
    "m3u8": "application/vnd.apple.mpegurl",
    "mpd": "application/dash+xml",
    "m4s": "video/iso.segment",
    "ts": "video/mp2t",
}


def content_type(name: str) -> str:
    """The Content-Type of an output by its extension (outputs only ever have ours)."""
    return CONTENT_TYPES.get(name.rpartition(".")[2].lower(), "application/octet-stream")
