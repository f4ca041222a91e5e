"""The operation flags of `ffpool submit` and the operation they describe."""

from __future__ import annotations

import argparse
from typing import Any

OPERATIONS = ("probe", "thumbnail", "transcode", "extract_audio", "trim", "ladder")
# CLI flag → operation field; only the flags given are sent, the model supplies defaults.
OP_FLAGS: dict[str, tuple[str, type]] = {
    "time": ("time", float),
    "width": ("width", int),
    "height": ("height", int),
    "format": ("format", str),
    "container": ("container", str),
    "video_codec": ("video_codec", str),
    "audio_codec": ("audio_codec", str),
    "crf": ("crf", int),
    "video_bitrate": ("video_bitrate_kbps", int),
    "audio_bitrate": ("audio_bitrate_kbps", int),
    "bitrate": ("bitrate_kbps", int),
    "fps": ("fps", float),
    "preset": ("preset", str),
    "start": ("start", float),
    "duration": ("duration", float),
    "mode": ("mode", str),
    "segment_seconds": ("segment_seconds", float),
    "hls_segment_type": ("hls_segment_type", str),
}
# Lists, comma-separated on the command line: `--formats hls,dash`, `--audio-bitrates 128,64`,
# `--renditions 720:2800,360:800` (height:kbps).
LIST_FLAGS: dict[str, str] = {
    "formats": "formats",
    "audio_bitrates": "audio_bitrates_kbps",
    "renditions": "renditions",
}


def add_operation_flags(p: argparse.ArgumentParser) -> None:
    """The operation's name and its fields' flags; only the flags given are sent."""
    p.add_argument("operation", choices=OPERATIONS)
    for flag, (_, kind) in OP_FLAGS.items():
        p.add_argument(f"--{flag.replace('_', '-')}", dest=flag, type=kind)
    for flag in LIST_FLAGS:
        p.add_argument(f"--{flag.replace('_', '-')}", dest=flag)
    p.add_argument(
        "--chunk-seconds",
        type=float,
        help="split the encode into chunks of about this length, run by any worker "
        "(transcode, ladder; docs/chunks.md)",
    )
    p.add_argument(
        "--chunk-mode",
        choices=("always", "auto"),
        help="auto: split only when the input is long and other workers consume the queue",
    )


def operation_from(args: argparse.Namespace) -> dict[str, Any]:
    op: dict[str, Any] = {"op": args.operation}
    for flag, (field, _) in OP_FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            op[field] = value
    for flag, field in LIST_FLAGS.items():
        if (text := getattr(args, flag)) is not None:
            op[field] = [_list_item(flag, item) for item in text.split(",") if item]
    if args.chunk_seconds is not None or args.chunk_mode is not None:
        chunking: dict[str, Any] = {}
        if args.chunk_seconds is not None:
            chunking["chunk_seconds"] = args.chunk_seconds
        if args.chunk_mode is not None:
            chunking["mode"] = args.chunk_mode
        op["chunking"] = chunking
    return op


def _list_item(flag: str, item: str) -> Any:
    """One element of a list flag; the server's model checks the values."""
    if flag == "formats":
        return item
    if flag == "renditions":
        height, _, kbps = item.partition(":")
        return {"height": _int(height), "video_bitrate_kbps": _int(kbps)}
    return _int(item)


def _int(text: str) -> int | str:
    """A number where one is expected; else the text as given, for the server to refuse
    with a message naming the field."""
    return int(text) if text.strip().isdigit() else text
