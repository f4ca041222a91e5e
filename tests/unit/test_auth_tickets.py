"""Browser tickets (pure, injected clock): signed, single use, short-lived, bounded."""

from __future__ import annotations

from ffpool.auth.identity import ANONYMOUS, Caller
from ffpool.auth.tickets import TICKET_TTL_S, Tickets


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_ticket_is_single_use() -> None:
    tickets = Tickets(b"k" * 32, Clock())
    ticket = tickets.issue(Caller(tenant="acme"))
    assert tickets.redeem(ticket) == Caller(tenant="acme")
    assert tickets.redeem(ticket) is None


def test_a_ticket_expires() -> None:
    clock = Clock()
    tickets = Tickets(b"k" * 32, clock)
    ticket = tickets.issue(Caller(tenant="acme"))
    clock.now += TICKET_TTL_S + 1
    assert tickets.redeem(ticket) is None


def test_forged_tickets_are_refused() -> None:
    tickets = Tickets(b"k" * 32, Clock())
    ticket = tickets.issue(Caller(tenant="acme"))
    tenant, expires, nonce, sig = ticket.split(".")
    for forged in (
        f"globex.{expires}.{nonce}.{sig}",
        f"{tenant}.{int(expires) + 5}.{nonce}.{sig}",
        f"{tenant}.{int(expires) + 3600}.{nonce}.{sig}",
        f"{tenant}.{expires}.{nonce}.{'0' * 64}",
        Tickets(b"x" * 32, Clock()).issue(Caller(tenant="acme")),
        "",
        "a.b.c",
        "a.b.c.d",
        f"{tenant}.{expires}.{nonce}.{sig}.x",
    ):
        assert tickets.redeem(forged) is None
    assert tickets.redeem(ticket) == Caller(tenant="acme")


def test_anonymous_tickets_stay_anonymous() -> None:
    tickets = Tickets(b"k" * 32, Clock())
    assert tickets.redeem(tickets.issue(ANONYMOUS)) == ANONYMOUS


def test_taken_tickets_are_bounded_and_forgotten_once_expired() -> None:
    clock = Clock()
    tickets = Tickets(b"k" * 32, clock, capacity=3)
    issued = [tickets.issue(Caller(tenant="acme")) for _ in range(4)]
    assert all(tickets.redeem(t) is not None for t in issued[:3])
    assert tickets.redeem(issued[3]) is None  # full: refused, not forgotten early
    clock.now += TICKET_TTL_S + 1
    # Three fresh tickets fit a capacity of three only if the three expired ones are gone.
    fresh = [tickets.issue(Caller(tenant="acme")) for _ in range(4)]
    assert all(tickets.redeem(t) is not None for t in fresh[:3])
    assert tickets.redeem(fresh[3]) is None
