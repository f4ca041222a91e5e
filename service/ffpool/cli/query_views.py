"""How `status`, `jobs` and `dead-letters` show what the server knows (pure: no I/O; the
tables are rich renderables the command prints)."""

from __future__ import annotations

from datetime import datetime

from rich.table import Table

from ffpool.cli.untrusted import shown
from ffpool.domain.events import JobRecord, JobState
from ffpool.domain.listing import JobSummary

STATE_STYLE = {
    JobState.QUEUED: "cyan",
    JobState.RUNNING: "blue",
    JobState.COMPLETED: "green",
    JobState.FAILED: "red",
    JobState.CANCELLED: "yellow",
}


def age(then: datetime, now: datetime) -> str:
    """`42s`, `5m`, `3h`, `2d`: how long ago, in the largest whole unit."""
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def percent(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}%"


def _state(state: JobState) -> str:
    return f"[{STATE_STYLE[state]}]{state.value}[/]"


def _when(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "-"
    return f"{at.isoformat(timespec='seconds')} ({age(at, now)} ago)"


def size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def status_lines(record: JobRecord, now: datetime) -> list[str]:
    """A job's record in words (rich markup; what came from outside is escaped)."""
    lines = [
        f"job        {record.job_id}",
        f"state      {_state(record.state)} (attempt {record.attempt})",
        f"operation  {shown(record.operation)} (priority {record.priority})",
    ]
    if (p := record.progress) is not None and not record.state.terminal:
        speed = f", {p.speed:.2f}x" if p.speed else ""
        eta = f", about {p.eta_s:.0f}s left" if p.eta_s is not None else ""
        lines.append(f"progress   {percent(p.percent) or '?'} at {p.out_time_s:.1f}s{speed}{eta}")
    lines.append(f"created    {_when(record.created_at, now)}")
    lines.append(f"started    {_when(record.started_at, now)}")
    lines.append(f"finished   {_when(record.finished_at, now)}")
    if record.worker:
        lines.append(f"worker     {shown(record.worker)}")
    if record.result is not None:
        lines.append(f"took       {record.result.processing_time_s:.2f}s")
        for output in record.result.outputs:
            where = f" at {shown(output.location)}" if output.location else ""
            lines.append(f"output     {shown(output.name)} ({size(output.size)}){where}")
    if record.failure is not None:
        failure = record.failure
        lines.append(f"failure    [red]{failure.code}[/red]: {shown(failure.message)}")
    if record.cancel is not None:
        lines.append(f"cancelled  {shown(record.cancel.reason)}")
    return lines


def jobs_table(rows: list[JobSummary], now: datetime) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("JOB", no_wrap=True)
    table.add_column("OPERATION")
    table.add_column("STATE")
    table.add_column("PROGRESS", justify="right")
    table.add_column("AGE", justify="right")
    for row in rows:
        where = percent(row.percent)
        if row.failure_code is not None:
            where = str(row.failure_code)
        table.add_row(
            row.job_id, shown(row.operation), _state(row.state), where, age(row.created_at, now)
        )
    return table


def dead_letters_table(records: list[JobRecord], now: datetime) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("JOB", no_wrap=True)
    table.add_column("OPERATION")
    table.add_column("FAILED", justify="right")
    table.add_column("CODE")
    table.add_column("REASON", overflow="fold")
    for record in records:
        failure = record.failure
        when = record.finished_at or record.created_at
        table.add_row(
            record.job_id,
            shown(record.operation),
            f"{age(when, now)} ago",
            str(failure.code) if failure is not None else "-",
            shown(failure.message) if failure is not None else "-",
        )
    return table
