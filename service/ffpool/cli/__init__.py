"""`ffpool`: run the service (serve/server/worker), submit jobs, print the protocol schema,
create API tokens."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import traceback
from typing import Any

from pydantic import ValidationError

from ffpool import logs
from ffpool.cli.errors import ExitCode, describe
from ffpool.cli.op_flags import operation_from
from ffpool.settings import Settings

__all__ = ["build_parser", "main", "operation_from"]


def client_verbs() -> list[Any]:
    """The modules of the client commands; each has `add_parser(sub)`, and the parsers it adds
    set `run`, an async function of the parsed arguments returning the exit code."""
    from ffpool.cli import completion, follow_cmd, query_cmd, submit_cmd

    return [submit_cmd, follow_cmd, query_cmd, completion]


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
    for verb in client_verbs():
        verb.add_parser(sub)
    token = sub.add_parser("token", help="API tokens (docs/security.md)")
    create = token.add_subparsers(dest="token_command", required=True).add_parser(
        "create", help="print a new token, then its line for AUTH_TOKENS_FILE"
    )
    create.add_argument("--tenant", required=True, help="a DNS label: a-z, 0-9 and '-'")
    return parser


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


def run_client(args: argparse.Namespace) -> int:
    """A client command: its failures are one line and an exit code (cli/errors.py); with
    --debug, the traceback too."""
    try:
        return int(asyncio.run(args.run(args)))
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # stdout closed early (`ffpool jobs | head -1`): the reader has what it wanted.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    except Exception as exc:
        if getattr(args, "debug", False):
            traceback.print_exc()
        line, code = describe(exc, _server_of(args))
        print(f"ffpool {args.command}: {line}", file=sys.stderr)
        return code


def _server_of(args: argparse.Namespace) -> str | None:
    """The server URL the command used (flag, environment, config file), for the error line."""
    from ffpool.cli.common import config_of

    try:
        return config_of(args).server
    except Exception:
        return getattr(args, "server", None)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["operator"]:
        from ffpool_operator.main import main as operator_main

        operator_main(argv[1:])
        return
    parser = build_parser()
    args = parser.parse_args(argv)
    args.root_parser = parser  # `ffpool completion` prints the whole grammar's script
    if args.command == "schema":
        from ffpool.domain.protocol import json_schema

        print(json.dumps(json_schema(), indent=2, sort_keys=True))
    elif args.command == "token":
        sys.exit(create_token(args.tenant))
    elif getattr(args, "run", None) is not None:
        sys.exit(run_client(args))
    else:
        from ffpool.app import Role, serve_forever

        try:
            settings = settings_from(args)
        except ValidationError as exc:
            sys.exit(f"invalid configuration: {exc}")
        logs.configure(settings.log_level)
        asyncio.run(serve_forever(settings, Role(args.command)))
