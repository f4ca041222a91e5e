"""`ffpool watch` and `ffpool cancel`: follow a job live, or ask to stop it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any, Final

from ffpool.cli.common import add_client_flags, add_reconnect_flag, open_client, seconds
from ffpool.cli.errors import ExitCode
from ffpool.cli.interrupt import follow_job, interrupts, stop
from ffpool.cli.outcome import finish, print_json
from ffpool.cli.progress import JobBar, console, outcome_lines
from ffpool.cli.saving import add_save_flags
from ffpool.cli.untrusted import JOB_HELP, job_id_arg
from ffpool.client.session import Client, ClientError
from ffpool.domain.events import CancelledEvent, StateEvent
from ffpool.domain.protocol import ErrorCode

# How long `cancel` waits for the job's outcome by default (a running FFmpeg is stopped within
# CANCEL_GRACE_SECONDS of the request: docs/protocol.md, `cancel`).
CANCEL_WAIT_S: Final = 30.0
# `watch --download` names outputs as `ffpool download` does: `<first 8 of the job id>.<op>.<ext>`.
STEM_CHARS: Final = 8


def add_parser(sub: Any) -> None:
    watch = sub.add_parser(
        "watch", help="follow a job's progress to its outcome (Ctrl-C cancels it)"
    )
    watch.set_defaults(run=run_watch)
    watch.add_argument("job_id", metavar="JOB", type=job_id_arg, help=JOB_HELP)
    add_client_flags(watch)
    add_reconnect_flag(watch)
    watch.add_argument(
        "--events", action="store_true", help="with --json: one JSON line per event, as it comes"
    )
    watch.add_argument(
        "--download", action="store_true", help="save the outputs when the job completes"
    )
    add_save_flags(
        watch,
        out_help="with --download: save the output exactly here",
        dir_help="with --download: save into DIR as <job>.<op>.<ext> (<job>: the id's first 8 "
        "characters), never over an earlier file (default: .)",
    )
    cancel = sub.add_parser("cancel", help="cancel a job and wait for its outcome")
    cancel.set_defaults(run=run_cancel)
    cancel.add_argument("job_id", metavar="JOB", type=job_id_arg, help=JOB_HELP)
    add_client_flags(cancel)
    cancel.add_argument(
        "--wait",
        type=seconds,
        default=CANCEL_WAIT_S,
        metavar="SECONDS",
        help=f"how long to wait for the job to stop ({CANCEL_WAIT_S:g})",
    )


class EventLines:
    """`watch --json --events`: every event as one line of JSON on stdout, for scripts."""

    def __init__(self) -> None:
        self.operation: str | None = None

    def __enter__(self) -> EventLines:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def say(self, line: str) -> None:
        console.print(line)

    def show(self, event: Any) -> None:
        if isinstance(event, StateEvent):
            self.operation = event.operation
        print(event.model_dump_json(), flush=True)


async def run_watch(args: argparse.Namespace) -> int:
    lines = args.json and args.events
    with interrupts() as keys:
        async with contextlib.AsyncExitStack() as stack:
            opening = asyncio.ensure_future(stack.enter_async_context(open_client(args)))
            if not await keys.first_of(opening, presses=1):
                await stop(opening)
                return ExitCode.INTERRUPTED
            client = opening.result()
            view: EventLines | JobBar = EventLines() if lines else JobBar()
            with view:
                followed = await follow_job(
                    client, args.job_id, keys, view.show, view.say, args.reconnect_for
                )
            return await finish(
                client,
                args,
                args.job_id,
                followed,
                keys,
                stem=args.job_id[:STEM_CHARS],
                op=view.operation or "output",
                save=args.download,
                show_json=args.json and not lines,
            )


async def run_cancel(args: argparse.Namespace) -> int:
    """0 when the job is no longer running: cancelled now, or it had already finished (the
    line says which); 3 when it did not stop within --wait seconds."""
    async with open_client(args) as client:
        await client.cancel(args.job_id)
        try:
            outcome = await client.wait(args.job_id, timeout=args.wait)
        except ClientError as exc:
            if exc.error.code is not ErrorCode.NOT_CANCELLABLE:
                raise
            return await _already_finished(client, args)
        except TimeoutError:
            console.print(
                f"asked to cancel job {args.job_id}; it did not stop within {args.wait:g}s "
                f"(follow it: ffpool watch {args.job_id})"
            )
            return ExitCode.UNREACHABLE
        for line in outcome_lines(args.job_id, outcome):
            console.print(line if isinstance(outcome, CancelledEvent) else f"too late: {line}")
        if args.json:
            print_json(outcome)
        return ExitCode.OK


async def _already_finished(client: Client, args: argparse.Namespace) -> int:
    """The refusal of a finished job's cancel, as a line saying how it ended."""
    await client.subscribe(args.job_id)
    outcome = await client.wait(args.job_id, timeout=client.timeout)
    for line in outcome_lines(args.job_id, outcome):
        console.print(f"nothing to cancel, already finished: {line}", soft_wrap=True)
    if args.json:
        print_json(outcome)
    return ExitCode.OK
