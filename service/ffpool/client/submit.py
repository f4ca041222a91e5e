"""`ffpool submit`: upload or reference an input, submit, show a progress bar, download.

Outputs kept in object storage (they have a `location`) are shown, not downloaded: their
location and a presigned link, which works without a token until it expires; `--download`
saves them into --output-dir too (docs/storage.md, "Protocol and CLI").
"""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import TypeAdapter
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from ffpool.client.session import Client, ClientError
from ffpool.domain.events import CompletedEvent, FailedEvent, ProgressEvent, StateEvent
from ffpool.domain.jobs import JobInput, JobSpec, Operation

console = Console(stderr=True)


async def _input(client: Client, args: argparse.Namespace) -> Any:
    if args.file is not None:
        return {"kind": "upload", "upload_id": await client.upload(args.file)}
    if args.path is not None:
        return {"kind": "path", "path": args.path}
    if args.s3 is not None:
        return {"kind": "s3", "url": args.s3}
    return {"kind": "url", "url": args.url}


async def run_submit(args: argparse.Namespace, operation: dict[str, Any]) -> int:
    op = TypeAdapter(Operation).validate_python(operation)  # fail before uploading anything
    where = {"output": args.output, "callback": args.callback}
    JobSpec.model_validate({"input": {"kind": "path", "path": "x"}, "operation": op, **where})
    async with Client(args.server, args.http, token=args.token) as client:
        job_input = TypeAdapter(JobInput).validate_python(await _input(client, args))
        spec = JobSpec.model_validate({"input": job_input, "operation": op, **where})
        try:
            accepted = await client.submit(spec, args.priority, args.key)
        except ClientError as exc:
            console.print(f"[red]refused[/red] {exc}")
            return 2
        console.print(f"job [bold]{accepted.job_id}[/bold] accepted ({op.op})")
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}%"),
            TextColumn("{task.fields[speed]}"),
            TimeRemainingColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("queued", total=100, speed="")

            def show(event: Any) -> None:
                if isinstance(event, StateEvent):
                    bar.update(task, description=event.state.value)
                elif isinstance(event, ProgressEvent) and event.percent is not None:
                    speed = f"{event.speed:.2f}x" if event.speed else ""
                    bar.update(task, completed=event.percent, speed=speed)
                elif isinstance(event, CompletedEvent):
                    bar.update(task, completed=100, description="completed")

            outcome = await client.wait(accepted.job_id, on_event=show)
        return await _finish(client, args, outcome)


async def _finish(client: Client, args: argparse.Namespace, outcome: Any) -> int:
    if args.json:
        print(outcome.model_dump_json(indent=2))
    if isinstance(outcome, CompletedEvent):
        for output in outcome.outputs:
            if output.location is not None:
                console.print(f"[green]stored[/green] {output.location} ({output.size} bytes)")
                console.print(f"  link: {output.url}", soft_wrap=True)
                if not args.download:
                    continue
            path = await client.download(output, args.output_dir)
            console.print(f"[green]saved[/green] {path} ({output.size} bytes)")
        console.print(f"done in {outcome.processing_time_s:.2f}s")
        return 0
    if isinstance(outcome, FailedEvent):
        console.print(f"[red]failed[/red] {outcome.code}: {outcome.message}")
        if outcome.stderr_tail:
            console.print(outcome.stderr_tail)
        return 1
    console.print("[yellow]cancelled[/yellow]")
    return 1
