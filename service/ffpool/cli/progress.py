"""What `submit` and `watch` show on stderr: a job's live progress bar and its outcome in words
(stdout stays for what scripts read: `--json`, a `--detach`ed job's id)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from ffpool.cli.query_views import size
from ffpool.cli.untrusted import shown
from ffpool.domain.events import (
    CancelledEvent,
    CompletedEvent,
    FailedEvent,
    OutputFile,
    ProgressEvent,
    StateEvent,
)

console = Console(stderr=True, highlight=False)


class JobBar:
    """The job's state, percent, speed and time left, redrawn as its events arrive. Use it as
    a context manager; `show` is the `on_event` of a wait or follow, `say` prints a line above
    the bar."""

    def __init__(self, out: Console | None = None) -> None:
        self.console = out or console
        self.operation: str | None = None
        self._bar = Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}%"),
            TextColumn("{task.fields[speed]}"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> JobBar:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._bar.stop()

    def _started(self) -> TaskID:
        """The bar appears with the job's first event: a job that is refused shows none."""
        if self._task is None:
            self._bar.start()
            self._task = self._bar.add_task("waiting", total=100, speed="")
        return self._task

    def say(self, line: str) -> None:
        """A line above the bar (the bar stays where it is)."""
        self.console.print(line)

    def show(self, event: Any) -> None:
        task = self._started()
        if isinstance(event, StateEvent):
            self.operation = event.operation
            self._bar.update(task, description=event.state.value)
        elif isinstance(event, ProgressEvent) and event.percent is not None:
            speed = f"{event.speed:.2f}x" if event.speed else ""
            self._bar.update(task, completed=event.percent, speed=speed)
        elif isinstance(event, CompletedEvent):
            self._bar.update(task, completed=100, description="completed")
        elif isinstance(event, FailedEvent | CancelledEvent):
            self._bar.update(task, description=event.type)


def outcome_lines(job_id: str, outcome: CompletedEvent | FailedEvent | CancelledEvent) -> list[str]:
    """The outcome in words (rich markup; what the server said is made safe: untrusted.py)."""
    if isinstance(outcome, CompletedEvent):
        return [f"[green]completed[/green] job {job_id} in {outcome.processing_time_s:.2f}s"]
    if isinstance(outcome, FailedEvent):
        lines = [f"[red]failed[/red] job {job_id}: {outcome.code}: {shown(outcome.message)}"]
        tail = outcome.stderr_tail
        return lines + ([shown(tail, lines=True)] if tail else [])
    return [f"[yellow]cancelled[/yellow] job {job_id}: {shown(outcome.reason)}"]


def stored_lines(output: OutputFile) -> list[str]:
    """An output kept in object storage: its location, and the presigned link that works
    without a token until it expires (docs/storage.md)."""
    return [
        f"[green]stored[/green] {shown(output.location or '')} ({size(output.size)})",
        f"  link: {shown(output.url)}",
    ]
