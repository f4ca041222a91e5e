"""The flags every client command shares, and the client they configure."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator

from ffpool import names
from ffpool.client.session import Client


def add_client_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", default="ws://127.0.0.1:8080/ws")
    p.add_argument("--http", help="HTTP base URL (default: the server's host, port 8081)")
    p.add_argument(
        "--token",
        default=os.environ.get(names.TOKEN_ENV),
        help=f"API token (default: ${names.TOKEN_ENV}; prefer the variable: argv is visible)",
    )
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")


@contextlib.asynccontextmanager
async def open_client(args: argparse.Namespace) -> AsyncIterator[Client]:
    """The client the command's flags (and the config file, env) describe, connected."""
    async with Client(args.server, args.http, token=args.token) as client:
        yield client
