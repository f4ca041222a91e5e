"""`ffpool submit`: upload or reference an input, submit, follow, save the outputs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ffpool.cli.common import add_client_flags
from ffpool.cli.op_flags import add_operation_flags, operation_from


def add_parser(sub: Any) -> None:
    p = sub.add_parser("submit", help="submit a job, show progress, download")
    p.set_defaults(run=run)
    add_operation_flags(p)
    add_client_flags(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", type=Path, help="a local file, uploaded first")
    src.add_argument("--path", help="a path under the server's MEDIA_ROOT")
    src.add_argument("--url", help="an http(s) URL the worker downloads")
    src.add_argument("--s3", help="s3://bucket/key, read with the pool's credentials")
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


def _s3_location(value: str) -> str:
    """`--output` names a bucket location; `-o/--output-dir` is the local directory."""
    if not value.startswith("s3://"):
        raise argparse.ArgumentTypeError(
            "--output takes s3://bucket/prefix; a local directory is -o/--output-dir"
        )
    return value


async def run(args: argparse.Namespace) -> int:
    from ffpool.client.submit import run_submit

    return await run_submit(args, operation_from(args))
