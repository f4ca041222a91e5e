"""`ffpool submit`: upload or reference an input, submit, follow, save the outputs.

Outputs kept in object storage (they have a `location`) are shown, not downloaded: their
location and a presigned link, which works without a token until it expires; `--download`
saves them locally too (docs/storage.md, "Protocol and CLI"). Local names never overwrite an
earlier run's (cli/saving.py); Ctrl-C cancels the job (cli/interrupt.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from ffpool.cli.common import add_client_flags, add_reconnect_flag, open_client
from ffpool.cli.errors import ExitCode
from ffpool.cli.interrupt import Interrupts, follow_job, interrupts, stop
from ffpool.cli.op_flags import add_operation_flags, operation_from
from ffpool.cli.outcome import finish
from ffpool.cli.progress import JobBar, console
from ffpool.cli.saving import add_save_flags, input_stem
from ffpool.client.session import Client
from ffpool.domain.jobs import JobInput, JobSpec, Operation
from ffpool.domain.protocol import Accepted


def add_parser(sub: Any) -> None:
    p = sub.add_parser("submit", help="submit a job, show its progress, save its outputs")
    p.set_defaults(run=run)
    add_operation_flags(p)
    add_client_flags(p)
    add_reconnect_flag(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", type=Path, help="a local file, uploaded first")
    src.add_argument("--path", help="a path under the server's MEDIA_ROOT")
    src.add_argument("--url", help="an http(s) URL the worker downloads")
    src.add_argument(
        "--s3", metavar="S3_URL", help="s3://bucket/key, read with the pool's credentials"
    )
    add_save_flags(
        p,
        out_help="save the output exactly here, overwriting; ending in '/': into that directory "
        "(several outputs: this directory)",
        dir_help="local directory for the outputs, saved as <input-stem>.<op>.<ext> (then .1, "
        ".2… beside earlier runs'; several outputs: a directory <input-stem>.<op>/) "
        "(default: .)",
    )
    p.add_argument(
        "--output",
        type=_s3_location,
        metavar="S3_URL",
        help="s3://bucket/prefix: the job's outputs go to <prefix>/<job id>/ in the bucket",
    )
    p.add_argument(
        "--download",
        action="store_true",
        help="also save outputs kept in object storage locally (else only shown)",
    )
    p.add_argument(
        "--callback", metavar="URL", help="POST the job's state changes here (docs/webhooks.md)"
    )
    p.add_argument(
        "--priority", type=int, default=0, metavar="N", help="0-9, higher starts first (0)"
    )
    p.add_argument("--key", help="idempotency key: resubmitting it returns the same job")
    p.add_argument(
        "--detach",
        "--no-wait",
        dest="detach",
        action="store_true",
        help="print the job id once accepted and exit (follow it with `ffpool watch`)",
    )


def _s3_location(value: str) -> str:
    """`--output` names a bucket location; `--output-dir` and `-o/--out` are local."""
    if not value.startswith("s3://"):
        raise argparse.ArgumentTypeError(
            "--output takes s3://bucket/prefix; a local directory is --output-dir, "
            "a local file -o/--out"
        )
    return value


def source_of(args: argparse.Namespace) -> str:
    """The input as given: its stem names the saved outputs."""
    given = args.file if args.file is not None else args.path or args.url or args.s3
    return str(given)


async def _input(client: Client, args: argparse.Namespace) -> Any:
    if args.file is not None:
        return {"kind": "upload", "upload_id": await client.upload(args.file)}
    if args.path is not None:
        return {"kind": "path", "path": args.path}
    if args.s3 is not None:
        return {"kind": "s3", "url": args.s3}
    return {"kind": "url", "url": args.url}


async def _accept(
    stack: contextlib.AsyncExitStack, args: argparse.Namespace, op: Operation
) -> tuple[Client, Accepted]:
    """Connect, upload (if a --file), submit: everything before the server has the job."""
    client = await stack.enter_async_context(open_client(args))
    job_input = TypeAdapter(JobInput).validate_python(await _input(client, args))
    spec = JobSpec.model_validate(
        {"input": job_input, "operation": op, "output": args.output, "callback": args.callback}
    )
    return client, await client.submit(spec, args.priority, args.key)


async def run(args: argparse.Namespace) -> int:
    op = TypeAdapter(Operation).validate_python(operation_from(args))
    where = {"output": args.output, "callback": args.callback}
    # The whole job checked before anything is uploaded.
    JobSpec.model_validate({"input": {"kind": "path", "path": "x"}, "operation": op, **where})
    with interrupts() as keys:
        async with contextlib.AsyncExitStack() as stack:
            accepting = asyncio.ensure_future(_accept(stack, args, op))
            if not await keys.first_of(accepting, presses=1):
                await stop(accepting)
                console.print("stopped: the job was not submitted")
                return ExitCode.INTERRUPTED
            client, accepted = accepting.result()
            return await _follow(client, args, accepted, keys, op.op)


async def _follow(
    client: Client, args: argparse.Namespace, accepted: Accepted, keys: Interrupts, op: str
) -> int:
    job_id = accepted.job_id
    if args.detach:
        print(accepted.model_dump_json() if args.json else job_id, flush=True)
        return ExitCode.OK
    again = " (already submitted with this --key)" if accepted.duplicate else ""
    console.print(f"job [bold]{job_id}[/bold] accepted ({op}){again}")
    with JobBar() as bar:
        followed = await follow_job(client, job_id, keys, bar.show, bar.say, args.reconnect_for)
    stem = input_stem(source_of(args))
    return await finish(
        client, args, job_id, followed, keys, stem=stem, op=op, save=True, show_json=args.json
    )
