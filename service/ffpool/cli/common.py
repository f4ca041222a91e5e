"""The flags every client command shares, and the client they configure (cli/config.py)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import re
from collections.abc import AsyncIterator, Callable
from typing import Final

from ffpool import names
from ffpool.cli.config import CONFIG_ENV, DEFAULT_SERVER, SERVER_ENV, ClientConfig, load
from ffpool.cli.interrupt import RECONNECT_FOR_S
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


# ASCII digits only: str.isdigit also takes "²" and "١٢", which int() refuses or misreads.
_WHOLE: Final = re.compile(r"[0-9]{1,9}")


def seconds(text: str) -> float:
    """argparse type of a duration flag: a finite number of seconds, 0 or more (`-1`, `nan`
    and `inf` are usage errors, not a wait that never ends or ends at once)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"a number of seconds, 0 or more, not {text!r}")
    return value


def whole(lowest: int, highest: int) -> Callable[[str], int]:
    """argparse type of a count flag: a whole number (ASCII digits) from lowest to highest."""

    def parse(text: str) -> int:
        if not _WHOLE.fullmatch(text.strip()) or not lowest <= int(text) <= highest:
            raise argparse.ArgumentTypeError(
                f"a whole number from {lowest} to {highest}, not {text!r}"
            )
        return int(text)

    parse.__name__ = "whole number"  # argparse names the type in some messages
    return parse


def add_reconnect_flag(p: argparse.ArgumentParser) -> None:
    """`--reconnect-for`, for the commands that follow a job (`watch`, `submit`)."""
    p.add_argument(
        "--reconnect-for",
        type=seconds,
        default=RECONNECT_FOR_S,
        metavar="SECONDS",
        help="when the connection is lost, how long to try to reconnect before giving up "
        f"(default: {RECONNECT_FOR_S:g})",
    )


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
