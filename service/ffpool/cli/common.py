"""The flags every client command shares, and the client they configure (cli/config.py)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator

from ffpool import names
from ffpool.cli.config import CONFIG_ENV, DEFAULT_SERVER, SERVER_ENV, ClientConfig, load
from ffpool.client.session import Client


def add_client_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--server",
        metavar="URL",
        help="the server: its Ingress (https://ffpool.example.com) or a server's HTTP port; "
        f"the WebSocket is found from it (default: ${SERVER_ENV}, the config file, "
        f"else {DEFAULT_SERVER})",
    )
    p.add_argument(
        "--http",
        metavar="URL",
        help="override the HTTP base URL (default: the --server URL; for a ws:// --server, "
        "its host's port 8081)",
    )
    p.add_argument(
        "--token",
        help=f"API token (default: ${names.TOKEN_ENV}, else the config file, ${CONFIG_ENV} "
        "or ~/.config/ffpool/config.toml; prefer those: argv is visible to others)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")


def config_of(args: argparse.Namespace) -> ClientConfig:
    """Flags over environment over config file over defaults. Blocking: reads the file."""
    return load(server=getattr(args, "server", None), token=getattr(args, "token", None))


@contextlib.asynccontextmanager
async def open_client(args: argparse.Namespace, *, websocket: bool = True) -> AsyncIterator[Client]:
    """The client the command's flags (and the environment, the config file) describe,
    connected; `websocket=False` for commands that need only the HTTP side."""
    config = await asyncio.to_thread(config_of, args)
    async with Client.connect_to(
        config.server,
        token=config.token_value(),
        http_url=getattr(args, "http", None),
        websocket=websocket,
    ) as client:
        yield client
