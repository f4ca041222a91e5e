"""The fault-injection ledger's checks disprove what they should (tests/integration/faults.py)."""

from __future__ import annotations

from tests.integration.faults import Entry, Findings, plan, problems


def _entries() -> list[Entry]:
    jobs = plan(1, ok=3, poison=1, cancel=1)
    entries = []
    for n, p in enumerate(jobs):
        want = {"ok": "completed", "poison": "failed", "cancel": "cancelled"}[p.kind]
        entries.append(
            Entry(
                p,
                job_id=f"{n:032x}",
                outcomes=[want],
                server_states=[want] * 2,
                outputs_ok=True if p.kind == "ok" else None,
            )
        )
    return entries


def _clean(entries: list[Entry]) -> Findings:
    poison = {e.job_id for e in entries if e.planned.kind == "poison" and e.job_id}
    return Findings(overlaps=[], survivors=[], dead_letters=poison, leftovers=[])


def test_a_clean_run_has_no_problems() -> None:
    entries = _entries()
    assert problems(entries, _clean(entries)) == []


def test_the_plan_is_reproducible_and_complete() -> None:
    assert plan(5, 10, 2, 3) == plan(5, 10, 2, 3)
    kinds = [p.kind for p in plan(5, 10, 2, 3)]
    assert (kinds.count("ok"), kinds.count("poison"), kinds.count("cancel")) == (10, 2, 3)


def test_every_broken_guarantee_is_reported() -> None:
    entries = _entries()
    ok = next(e for e in entries if e.planned.kind == "ok")
    ok.outcomes = ["completed", "failed"]  # two ends
    ok.outputs_ok = False
    ok.server_states = ["completed", "failed"]
    found = _clean(entries)
    found.dead_letters = found.dead_letters | {"f" * 32}
    found.overlaps = ["a" * 32]
    found.survivors = [1234]
    found.leftovers = ["jobs/x/.run-1"]
    text = "\n".join(problems(entries, found))
    for needle in (
        "client saw",
        "servers say",
        "outputs are missing",
        "DLQ",
        "two FFmpeg runs",
        "outlived",
        "left behind",
    ):
        assert needle in text, needle


def test_an_unaccepted_job_is_reported() -> None:
    entries = _entries()
    entries[0].job_id = None
    assert any("never accepted" in p for p in problems(entries, _clean(entries)))
