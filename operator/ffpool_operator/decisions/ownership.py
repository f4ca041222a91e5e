"""Whose object is it, pure: an object with a pool's child name is the pool's only when one of its
ownerReferences carries the pool's uid. Anything else (no owner, another controller, a pool of
the same name that was deleted and recreated) is foreign: the operator never applies to it, never
adopts it and never deletes it (docs/operator.md, "Drift and ownership")."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict


class Owner(enum.StrEnum):
    ABSENT = "absent"
    OWN = "own"
    FOREIGN = "foreign"


def owner_of(live: dict[str, Any] | None, pool_uid: str) -> Owner:
    if live is None:
        return Owner.ABSENT
    refs = (live.get("metadata") or {}).get("ownerReferences") or []
    if pool_uid and any(isinstance(r, dict) and r.get("uid") == pool_uid for r in refs):
        return Owner.OWN
    return Owner.FOREIGN


def describe_owner(live: dict[str, Any]) -> str:
    """Who holds the object, for a message a user can act on: its controller (or first owner)
    reference, else the field managers that wrote it (`kubectl`, Helm, another operator)."""
    meta = live.get("metadata") or {}
    refs = [r for r in meta.get("ownerReferences") or [] if isinstance(r, dict)]
    if refs:
        ref = next((r for r in refs if r.get("controller")), refs[0])
        return f"owned by {ref.get('kind', '?')}/{ref.get('name', '?')} (uid {ref.get('uid', '?')})"
    managers = sorted(
        {str(e["manager"]) for e in meta.get("managedFields") or [] if e.get("manager")}
    )
    return "no owner" + (f", written by {', '.join(managers)}" if managers else "")


class Conflict(BaseModel):
    """An object with the name the pool needs that is not the pool's."""

    model_config = ConfigDict(frozen=True)

    kind: str
    name: str
    owner: str

    @property
    def message(self) -> str:
        return (
            f"{self.kind} {self.name} exists and is not this pool's ({self.owner}): left"
            " untouched; rename or delete it and the pool creates its own"
        )
