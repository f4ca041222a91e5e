"""Server-side apply for KMock (tests/kmock_ext.py), approximated closely enough for the operator:
https://kubernetes.io/docs/reference/using-api/server-side-apply/

- each manager owns the leaves it applied last (dict-key paths to scalars, lists or empty dicts;
  lists are atomic here, where the real server merges some of them by key);
- an apply sets its intent and removes the leaves its manager applied before and leaves out now,
  unless another manager owns them too; maps left empty by a removal go as well;
- `metadata.managedFields` lists one `Apply` entry per manager, in the real `FieldsV1` spelling
  (`f:<key>`), so ownership can be read as from a real API server.

Merge patches take no ownership here (a real server records them as `Update` entries).
"""

from __future__ import annotations

import copy
from typing import Any

Path = tuple[str, ...]
Owners = dict[str, set[Path]]
IDENTITY = {("metadata", "name"), ("metadata", "namespace")}


def leaves(obj: dict[str, Any], prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for key, value in obj.items():
        if value is None:
            continue
        if isinstance(value, dict) and value:
            out |= leaves(value, (*prefix, key))
        else:
            out.add((*prefix, key))
    return out


def _remove(obj: dict[str, Any], path: Path) -> None:
    """Removes `path` and then each parent map it leaves empty."""
    parents = [obj]
    for key in path[:-1]:
        child = parents[-1].get(key)
        if not isinstance(child, dict):
            return
        parents.append(child)
    parents[-1].pop(path[-1], None)
    for depth in range(len(path) - 1, 0, -1):
        if parents[depth]:
            break
        parents[depth - 1].pop(path[depth - 1], None)


def _merge(base: dict[str, Any], intent: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in intent.items():
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = _merge(out[key], value)
        elif value is not None:
            out[key] = copy.deepcopy(value)
    return out


def apply(
    live: dict[str, Any] | None, intent: dict[str, Any], owners: Owners, manager: str
) -> tuple[dict[str, Any], Owners]:
    """The object after `manager` applied `intent`, and every manager's leaves afterwards."""
    wanted = leaves(intent)
    others = set().union(*(p for m, p in owners.items() if m != manager))
    obj = copy.deepcopy(live or {})
    for path in sorted(owners.get(manager, set()) - wanted - others - IDENTITY):
        _remove(obj, path)
    return _merge(obj, intent), {**owners, manager: wanted}


def _tree(paths: set[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in paths:
        node = root
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return root


def managed_fields(owners: Owners, api_version: str) -> list[dict[str, Any]]:
    return [
        {
            "manager": manager,
            "operation": "Apply",
            "apiVersion": api_version,
            "fieldsType": "FieldsV1",
            "fieldsV1": _tree(paths - IDENTITY),
        }
        for manager, paths in sorted(owners.items())
    ]
