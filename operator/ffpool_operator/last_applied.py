"""Removing what the operator stopped setting, pure.

A JSON merge patch (RFC 7386) adds and replaces but never removes: a key the operator set once
(a ConfigMap entry, an annotation, a nodeSelector or limits key) would stay forever. So every
owned object carries, in the `ffpool.dev/last-applied` annotation, the dict-key paths the
operator set at its last apply; the next apply sets to null those it no longer sets. Keys others
set are never in the record, so they are never touched — except inside a whole subtree the
operator stops setting altogether (e.g. `affinity`), which goes as a whole. Lists are replaced
whole by a merge patch, so paths stop at lists.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ffpool import names

Path = tuple[str, ...]
Manifest = dict[str, Any]
RECORD_PATH: Path = ("metadata", "annotations", names.ANNOTATION_LAST_APPLIED)
_RECORD = TypeAdapter(list[list[str]])


def paths(manifest: Manifest) -> set[Path]:
    """Every dict-key path in `manifest` with a non-null value (not descending into lists)."""
    out: set[Path] = set()
    stack: list[tuple[Path, dict[str, Any]]] = [((), manifest)]
    while stack:
        prefix, node = stack.pop()
        for key, value in node.items():
            if value is None:
                continue
            out.add((*prefix, key))
            if isinstance(value, dict):
                stack.append(((*prefix, key), value))
    return out


def recorded(obj: Manifest | None) -> set[Path]:
    """The paths recorded on an existing object; none when absent or unreadable (then nothing is
    removed this time, and the record is rewritten)."""
    annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    raw = annotations.get(names.ANNOTATION_LAST_APPLIED)
    if not isinstance(raw, str):
        return set()
    try:
        return {tuple(p) for p in _RECORD.validate_json(raw) if p}
    except ValidationError:
        return set()


def _node(manifest: Manifest, path: Path) -> Any:
    node: Any = manifest
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def removals(manifest: Manifest, previous: set[Path]) -> list[Path]:
    """The shortest previously set paths `manifest` no longer sets, where the parent is still a
    dict in `manifest` (a parent now set to a scalar or list replaces the old value anyway)."""
    gone = sorted(previous - paths(manifest) - {RECORD_PATH}, key=lambda p: (len(p), p))
    out: list[Path] = []
    for path in gone:
        if any(path[: len(r)] == r for r in out):
            continue  # inside a subtree already removed
        if isinstance(_node(manifest, path[:-1]), dict):
            out.append(path)
    return out


def _with_record(manifest: Manifest) -> Manifest:
    body = copy.deepcopy(manifest)
    annotations = body.setdefault("metadata", {}).setdefault("annotations", {})
    annotations[names.ANNOTATION_LAST_APPLIED] = "{}"  # so the record lists its own parents
    record = sorted(paths(body) - {RECORD_PATH})
    annotations[names.ANNOTATION_LAST_APPLIED] = json.dumps(record, separators=(",", ":"))
    return body


def patch_body(manifest: Manifest, previous: set[Path]) -> Manifest:
    """The merge patch for an existing object: the manifest, the new record, and a null for
    each key the operator set last time and sets no longer."""
    body = _with_record(manifest)
    for path in removals(body, previous):
        parent = _node(body, path[:-1])
        parent[path[-1]] = None
    return body


def _merge(base: Manifest, extra: Manifest) -> Manifest:
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            out[key] = _merge(old, value)
        else:
            out[key] = value
    return out


def creation_body(manifest: Manifest, on_create: Manifest | None = None) -> Manifest:
    """The object to create: the manifest and its record, plus `on_create` — fields set only
    at creation and owned by someone else afterwards (the worker count), so not recorded."""
    body = _with_record(manifest)
    return _merge(body, copy.deepcopy(on_create)) if on_create else body
