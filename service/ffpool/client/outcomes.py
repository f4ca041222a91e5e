"""How a job ends for a client: its outcome event, or the server's refusal as ClientError.

A module of its own so that both the session (session.py) and the follow that rides out
reconnects (resume.py) use them without importing each other.
"""

from __future__ import annotations

from ffpool.domain.events import CancelledEvent, CompletedEvent, FailedEvent
from ffpool.domain.protocol import Error

Outcome = CompletedEvent | FailedEvent | CancelledEvent
TERMINAL = (CompletedEvent, FailedEvent, CancelledEvent)


class ClientError(Exception):
    def __init__(self, error: Error) -> None:
        super().__init__(f"{error.code}: {error.message}")
        self.error = error
