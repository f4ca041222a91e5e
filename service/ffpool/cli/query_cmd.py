"""`ffpool status`, `jobs`, `download` and `dead-letters`: what the server knows (docs/cli.md).

Results go to stdout (a table, or JSON with --json); what happened along the way (files
saved, nothing found) to stderr. They need only the server's HTTP side: no WebSocket.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from rich.console import Console

from ffpool.cli.common import add_client_flags, open_client, whole
from ffpool.cli.errors import ExitCode
from ffpool.cli.query_views import dead_letters_table, jobs_table, size, status_lines
from ffpool.cli.saving import add_save_flags, local_target, save_outputs
from ffpool.cli.untrusted import JOB_HELP, job_id_arg, shown
from ffpool.client.session import Client, ClientError
from ffpool.domain.events import JobRecord, JobState
from ffpool.domain.listing import MAX_LIMIT, BadQuery, parse_states
from ffpool.domain.protocol import ErrorCode

# Wide enough that a table's 32-character job ids are never cut when stdout is not a terminal.
PIPE_WIDTH = 200
# The file name `download` saves under: `<first 8 of the job id>.<op>.<ext>` (cli/saving.py).
STEM_CHARS = 8


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


def stdout() -> Console:
    out = Console(highlight=False)
    if not out.is_terminal:
        out.width = PIPE_WIDTH
    return out


_limit = whole(1, MAX_LIMIT)


def _states(text: str) -> frozenset[JobState]:
    try:
        return parse_states(text) or frozenset()
    except BadQuery as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(sub: Any) -> None:
    status = sub.add_parser("status", help="a job's state, progress, times, outputs or failure")
    status.set_defaults(run=run_status)
    status.add_argument("job_id", metavar="JOB", type=job_id_arg, help=JOB_HELP)
    add_client_flags(status)

    jobs = sub.add_parser("jobs", help="your jobs, newest first: state, progress, age")
    jobs.set_defaults(run=run_jobs)
    jobs.add_argument(
        "--state",
        type=_states,
        default=frozenset(),
        metavar="S,..",
        help="only these states: queued, running, completed, failed, cancelled",
    )
    jobs.add_argument("--limit", type=_limit, default=20, help="at most N jobs (default 20)")
    add_client_flags(jobs)

    download = sub.add_parser("download", help="save a completed job's outputs")
    download.set_defaults(run=run_download)
    download.add_argument("job_id", metavar="JOB", type=job_id_arg, help=JOB_HELP)
    add_save_flags(
        download,
        out_help="save exactly here (replaces it); ending in '/': into that directory",
        dir_help="else save into DIR as <job>.<op>.<ext>, never over an earlier file (default .)",
    )
    add_client_flags(download)

    dead = sub.add_parser("dead-letters", help="your failed jobs, with their reasons")
    dead.set_defaults(run=run_dead_letters)
    dead.add_argument("--limit", type=_limit, default=20, help="at most N jobs (default 20)")
    add_client_flags(dead)


def print_json(value: BaseModel | list[Any] | dict[str, Any]) -> None:
    if isinstance(value, BaseModel):
        text = value.model_dump_json(indent=2)
    else:
        shown = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
        text = json.dumps(shown if isinstance(value, list) else value, indent=2)
    print(text, flush=True)


def say(args: argparse.Namespace, line: str) -> None:
    """A line on stderr, named after the command like every client error (cli/errors.py)."""
    print(f"ffpool {args.command}: {line}", file=sys.stderr)


async def _find(client: Client, args: argparse.Namespace) -> JobRecord | None:
    """The job's record; None (said on stderr) when there is no such job of the caller's."""
    try:
        return await client.job(args.job_id)
    except ClientError as exc:
        if exc.error.code is not ErrorCode.UNKNOWN_JOB:
            raise
    say(args, f"no job {args.job_id} (unknown, forgotten, or another tenant's)")
    return None


async def run_status(args: argparse.Namespace) -> int:
    async with open_client(args, websocket=False) as client:
        record = await _find(client, args)
    if record is None:
        return ExitCode.NOT_FOUND
    if args.json:
        print_json(record)
    else:
        out = stdout()
        for line in status_lines(record, datetime.now(UTC)):
            out.print(line, soft_wrap=True)
    return ExitCode.OK


async def run_jobs(args: argparse.Namespace) -> int:
    async with open_client(args, websocket=False) as client:
        rows = await client.jobs(args.limit, sorted(args.state))
    if args.json:
        print_json(rows)
    elif not rows:
        say(args, "no jobs")
    else:
        stdout().print(jobs_table(rows, datetime.now(UTC)))
    return ExitCode.OK


async def run_dead_letters(args: argparse.Namespace) -> int:
    async with open_client(args, websocket=False) as client:
        records = await client.dead_letters(args.limit)
    if args.json:
        print_json(records)
    elif not records:
        say(args, "no dead letters")
    else:
        stdout().print(dead_letters_table(records, datetime.now(UTC)))
    return ExitCode.OK


def _not_downloadable(args: argparse.Namespace, record: JobRecord) -> int:
    """Why a job that is not completed has nothing to download, and the exit code."""
    job = f"job {record.job_id} {record.state.value}"
    if record.state is JobState.FAILED and record.failure is not None:
        say(args, f"{job} ({record.failure.code}): it has no outputs")
        return ExitCode.JOB_FAILED
    if record.state is JobState.CANCELLED:
        say(args, f"{job}: it has no outputs")
        return ExitCode.JOB_FAILED
    say(args, f"job {record.job_id} is {record.state.value}: no outputs yet (`ffpool watch`)")
    return ExitCode.USAGE


async def run_download(args: argparse.Namespace) -> int:
    async with open_client(args, websocket=False) as client:
        record = await _find(client, args)
        if record is None:
            return ExitCode.NOT_FOUND
        if record.state is not JobState.COMPLETED or record.result is None:
            return _not_downloadable(args, record)
        outputs = list(record.result.outputs)
        exact, output_dir = local_target(args.out, args.output_dir, len(outputs))
        saved = await save_outputs(
            client,
            outputs,
            stem=record.job_id[:STEM_CHARS],
            op=record.operation,
            output_dir=output_dir,
            exact=exact,
        )
    err = stderr()
    for output, path in zip(outputs, saved, strict=False):
        err.print(f"[green]saved[/green] {shown(str(path))} ({size(output.size)})", soft_wrap=True)
    if not outputs:
        err.print(f"job {record.job_id} has no output files (`ffpool status` shows its result)")
    if args.json:
        print_json({"job_id": record.job_id, "saved": [str(p) for p in saved]})
    return ExitCode.OK
