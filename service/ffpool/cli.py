"""`ffpool`: run the service (serve/server/worker), submit jobs, print the protocol schema,
create API tokens."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ffpool import logs, names
from ffpool.settings import Settings

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


def build_parser() -> argparse.ArgumentParser:
    """The command line's grammar (the operator's container args are checked against it)."""
    parser = argparse.ArgumentParser(prog="ffpool", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("serve", "WebSocket/HTTP servers and workers in one process"),
        ("server", "WebSocket/HTTP servers only (BACKEND=rabbitmq)"),
        ("worker", "workers only, with health/metrics HTTP (BACKEND=rabbitmq)"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--backend", choices=("memory", "rabbitmq"))
        p.add_argument("--host")
        p.add_argument("--ws-port", type=int)
        p.add_argument("--http-port", type=int)
        p.add_argument("--media-root")
    sub.add_parser("schema", help="print the protocol's JSON Schema")
    # Its own flags are parsed by the operator (see `main`); listed here for `ffpool -h`.
    sub.add_parser("operator", help="run the FFmpegPool Kubernetes operator", add_help=False)
    _submit_parser(sub.add_parser("submit", help="submit a job, show progress, download"))
    token = sub.add_parser("token", help="API tokens (docs/security.md)")
    create = token.add_subparsers(dest="token_command", required=True).add_parser(
        "create", help="print a new token, then its line for AUTH_TOKENS_FILE"
    )
    create.add_argument("--tenant", required=True, help="a DNS label: a-z, 0-9 and '-'")
    return parser


def _submit_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("operation", choices=OPERATIONS)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", type=Path, help="a local file, uploaded first")
    src.add_argument("--path", help="a path under the server's MEDIA_ROOT")
    src.add_argument("--url", help="an http(s) URL the worker downloads")
    src.add_argument("--s3", help="s3://bucket/key, read with the pool's credentials")
    p.add_argument("--server", default="ws://127.0.0.1:8080/ws")
    p.add_argument("--http", help="HTTP base URL (default: the server's host, port 8081)")
    p.add_argument("-o", "--output-dir", type=Path, default=Path("."), help="local directory")
    p.add_argument(
        "--output",
        type=_s3_location,
        help="s3://bucket/prefix: the job's outputs go to <prefix>/<job id>/ in the bucket",
    )
    p.add_argument(
        "--download",
        action="store_true",
        help="also save outputs kept in object storage into --output-dir (else only shown)",
    )
    p.add_argument("--callback", help="POST the job's state changes here (docs/webhooks.md)")
    p.add_argument("--priority", type=int, default=0)
    p.add_argument("--key", help="idempotency key: resubmitting it returns the same job")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.add_argument(
        "--token",
        default=os.environ.get(names.TOKEN_ENV),
        help=f"API token (default: ${names.TOKEN_ENV}; prefer the variable: argv is visible)",
    )
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


def _s3_location(value: str) -> str:
    """`--output` names a bucket location; `-o/--output-dir` is the local directory."""
    if not value.startswith("s3://"):
        raise argparse.ArgumentTypeError(
            "--output takes s3://bucket/prefix; a local directory is -o/--output-dir"
        )
    return value


def settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        k: v
        for k, v in {
            "backend": args.backend,
            "host": args.host,
            "ws_port": args.ws_port,
            "http_port": args.http_port,
            "media_root": args.media_root,
        }.items()
        if v is not None
    }
    return Settings(**overrides)


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


def create_token(tenant: str) -> int:
    """Line 1: the token, for the client (shown once, stored nowhere). Line 2: its line for
    AUTH_TOKENS_FILE, which holds only its hash."""
    from ffpool.auth.tokens import file_line, new_token

    token = new_token()
    try:
        line = file_line(tenant, token)
    except ValueError as exc:
        print(f"ffpool token create: {exc}", file=sys.stderr)
        return 2
    print(token)
    print(line)
    return 0


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["operator"]:
        from ffpool_operator.main import main as operator_main

        operator_main(argv[1:])
        return
    args = build_parser().parse_args(argv)
    if args.command == "schema":
        from ffpool.domain.protocol import json_schema

        print(json.dumps(json_schema(), indent=2, sort_keys=True))
    elif args.command == "token":
        sys.exit(create_token(args.tenant))
    elif args.command == "submit":
        from ffpool.client.submit import run_submit

        try:
            code = asyncio.run(run_submit(args, operation_from(args)))
        except ValidationError as exc:
            print(f"invalid job: {exc}", file=sys.stderr)
            code = 2
        sys.exit(code)
    else:
        from ffpool.app import Role, serve_forever

        try:
            settings = settings_from(args)
        except ValidationError as exc:
            sys.exit(f"invalid configuration: {exc}")
        logs.configure(settings.log_level)
        asyncio.run(serve_forever(settings, Role(args.command)))
