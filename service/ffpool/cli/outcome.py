"""The end of `submit` and `watch`: the outcome in words on stderr (and as JSON on stdout with
--json), the outputs saved (cli/saving.py), and the exit code (cli/errors.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from ffpool.cli.errors import ExitCode
from ffpool.cli.interrupt import Followed, Interrupts, stop
from ffpool.cli.progress import console, outcome_lines, stored_lines
from ffpool.cli.query_views import size
from ffpool.cli.saving import local_target, save_outputs
from ffpool.cli.untrusted import shown
from ffpool.client.session import Client
from ffpool.domain.events import CompletedEvent, OutputFile


def print_json(outcome: Any, saved: list[Path] | None = None) -> None:
    """The outcome event as the protocol sends it, plus `saved`: the local files written."""
    shown = outcome.model_dump(mode="json")
    if saved is not None:
        shown["saved"] = [str(path) for path in saved]
    print(json.dumps(shown, indent=2), flush=True)


def to_save(outputs: tuple[OutputFile, ...], download_stored: bool) -> list[OutputFile]:
    """The outputs saved locally: the server's own, and those kept in object storage only
    when asked (--download); the others are shown with their link."""
    return [o for o in outputs if o.location is None or download_stored]


async def finish(
    client: Client,
    args: argparse.Namespace,
    job_id: str,
    followed: Followed,
    keys: Interrupts,
    *,
    stem: str,
    op: str,
    save: bool,
    show_json: bool,
) -> int:
    """Show how the job ended, save its outputs (`save`), and return the exit code."""
    outcome = followed.outcome
    if outcome is None:
        return ExitCode.INTERRUPTED
    for line in outcome_lines(job_id, outcome):
        console.print(line, soft_wrap=True)
    saved: list[Path] | None = None
    if isinstance(outcome, CompletedEvent) and save and followed.interrupted:
        console.print(f"not saved (Ctrl-C): ffpool download {job_id}")
    elif isinstance(outcome, CompletedEvent) and save:
        saved = await _save(client, args, outcome, keys, stem=stem, op=op)
        if saved is None:
            console.print(f"stopped saving; the outputs stay on the server: job {job_id}")
            return ExitCode.INTERRUPTED
    if show_json:
        print_json(outcome, saved)
    elif isinstance(outcome, CompletedEvent) and not outcome.outputs and outcome.metadata:
        print(outcome.metadata.model_dump_json(indent=2))  # a probe's result is its metadata
    if followed.interrupted:
        return ExitCode.INTERRUPTED
    return ExitCode.OK if isinstance(outcome, CompletedEvent) else ExitCode.JOB_FAILED


async def _save(
    client: Client,
    args: argparse.Namespace,
    outcome: CompletedEvent,
    keys: Interrupts,
    *,
    stem: str,
    op: str,
) -> list[Path] | None:
    """Save the outputs (None: stopped by Ctrl-C), saying where each went."""
    for output in outcome.outputs:
        if output.location is not None:
            for line in stored_lines(output):
                console.print(line, soft_wrap=True)
    wanted = to_save(outcome.outputs, args.download)
    exact, output_dir = local_target(args.out, args.output_dir, len(wanted))
    saving = asyncio.ensure_future(
        save_outputs(client, wanted, stem=stem, op=op, output_dir=output_dir, exact=exact)
    )
    if not await keys.first_of(saving, presses=keys.presses + 1):
        await stop(saving)
        return None
    saved = saving.result()
    for output, path in zip(wanted, saved, strict=True):
        console.print(
            f"[green]saved[/green] {shown(str(path))} ({size(output.size)})", soft_wrap=True
        )
    return saved
