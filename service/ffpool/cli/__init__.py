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
from ffpool.cli.op_flags import add_operation_flags, operation_from
from ffpool.settings import Settings

__all__ = ["build_parser", "main", "operation_from"]


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
    add_operation_flags(p)
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
