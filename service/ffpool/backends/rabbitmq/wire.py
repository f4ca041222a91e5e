"""The AMQP wire format's version, and how a reader treats messages of other versions.

Every message ffpool publishes carries `x-ffpool-wire: "MAJOR.MINOR"`. A minor version only
adds fields, so a reader ignores fields it does not know (AMQP bodies only: the client-facing
WebSocket protocol stays strict). A newer major version may change what a known field means:
a reader never guesses at it, and never drops it either: a worker hands such a job back to
the queue for a newer worker, a server ignores such an event (its outcome is also on disk,
events.py). A message without the header comes from a release before versioning: 1.0.

This release reads majors 1 and 2 and writes both: a job an older (1.x) worker would run
wrongly, because the field that matters would be ignored (a chunk job's `chunk`: it would
transcode the parent's whole input) or not parse at all (a `ladder`, `chunking`), is published
as 2.0 (`job_headers`), and so are chunk jobs' events (published for their parent only,
names.chunk_events_key); every other message keeps 1.1 (`VERSION`), so older and newer
processes keep working together. See docs/rabbitmq.md, "Wire format and upgrades".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypeVar

from pydantic import TypeAdapter, ValidationError

from ffpool import logs, names
from ffpool.domain.jobs import Job, LadderOp, chunking_of

log = logs.get(__name__)
_T = TypeVar("_T")

MAJOR: Final = 2
"""The newest major this release reads, and writes for what older releases must not read."""
MINOR: Final = 0
NEWER: Final = f"{MAJOR}.{MINOR}"
VERSION: Final = "1.1"
"""What every message 1.x releases read correctly carries: most jobs, events, control."""
UNVERSIONED: Final = (1, 0)
_warned: set[tuple[str, int]] = set()


def headers(*, newer: bool = False) -> dict[str, Any]:
    """The wire header every published message carries; `newer`: one only releases of this
    major may read (`NEWER`)."""
    return {names.HEADER_WIRE: NEWER if newer else VERSION}


def needs_newer(job: Job) -> bool:
    """Whether a 1.x worker would run this job wrongly (see the module's docstring)."""
    op = job.spec.operation
    return job.chunk is not None or isinstance(op, LadderOp) or chunking_of(op) is not None


def job_headers(job: Job) -> dict[str, Any]:
    """The wire header of a message carrying this job (queued, republished, dead-lettered)."""
    return headers(newer=needs_newer(job))


def version_of(hdrs: Mapping[str, Any] | None) -> tuple[int, int]:
    """(major, minor) a message was written in; absent or not "MAJOR.MINOR" counts as 1.0
    (the releases before versioning sent no header; a broken one cannot claim a newer major
    and have a job bounce forever)."""
    raw = (hdrs or {}).get(names.HEADER_WIRE)
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    if not isinstance(text, str):
        return UNVERSIONED
    major, _, minor = text.partition(".")
    try:
        return int(major), int(minor or 0)
    except ValueError:
        return UNVERSIONED


def readable(hdrs: Mapping[str, Any] | None) -> bool:
    """Whether this release can read the message: same or older major version."""
    return version_of(hdrs)[0] <= MAJOR


def warn_unreadable(what: str, hdrs: Mapping[str, Any] | None) -> None:
    """Log once per kind of message and major version: a rollout sends many."""
    major = version_of(hdrs)[0]
    if (what, major) in _warned:
        return
    _warned.add((what, major))
    log.warning(
        "a message of a newer wire format left for a newer release",
        kind=what,
        wire=f"{major}.x",
        readable=f"{MAJOR}.x",
    )


def parse(adapter: TypeAdapter[_T], body: bytes) -> _T | None:
    """A body as `adapter`'s type, fields unknown to this release ignored (a newer minor
    version's additions, at any depth); None when it is not valid even so."""
    try:
        return adapter.validate_json(body, extra="ignore")
    except ValidationError:
        return None
