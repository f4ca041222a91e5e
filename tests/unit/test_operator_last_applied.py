"""Removing keys the operator stopped setting (review item 5): pure patch computation."""

import json
from typing import Any

from ffpool import names
from ffpool_operator import builders, last_applied
from tests.operator_harness.samples import POOL, spec

ANN = names.ANNOTATION_LAST_APPLIED


def _cm(data: dict[str, str], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "c", "namespace": "n", "labels": {"a": "1"}}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def _record(obj: dict[str, Any]) -> set[tuple[str, ...]]:
    return last_applied.recorded(obj)


def test_dropped_keys_are_nulled_and_others_keys_untouched() -> None:
    created = last_applied.creation_body(_cm({"A": "1", "B": "2"}, {"note": "x"}))
    # What the server holds: ours plus keys someone else added.
    live = json.loads(json.dumps(created))
    live["data"]["THEIRS"] = "t"
    live["metadata"]["annotations"]["kubectl.kubernetes.io/x"] = "y"
    body = last_applied.patch_body(_cm({"A": "1"}), _record(live))
    assert body["data"] == {"A": "1", "B": None}
    assert body["metadata"]["annotations"]["note"] is None
    assert "kubectl.kubernetes.io/x" not in body["metadata"]["annotations"]
    assert ("data", "B") not in _record(body)
    assert ("data", "A") in _record(body)


def test_a_whole_dropped_subtree_goes_at_its_root_and_scalars_replace() -> None:
    spec_before = {"nodeSelector": {"a": "b"}, "affinity": {"n": {"m": 1}}, "r": {"k": 1}}
    before = {"kind": "X", "metadata": {"name": "x"}, "spec": spec_before}
    after = {"kind": "X", "metadata": {"name": "x"}, "spec": {"r": 5}}
    body = last_applied.patch_body(after, _record(last_applied.creation_body(before)))
    assert body["spec"] == {"nodeSelector": None, "affinity": None, "r": 5}


def test_unknown_or_garbled_record_removes_nothing() -> None:
    assert last_applied.recorded(None) == set()
    assert last_applied.recorded(_cm({}, {ANN: "not json"})) == set()
    assert last_applied.recorded(_cm({}, {ANN: '{"a": 1}'})) == set()
    body = last_applied.patch_body(_cm({"A": "1"}), set())
    assert body["data"] == {"A": "1"}


def test_on_create_fields_are_set_but_never_recorded() -> None:
    manifest = {"kind": "Deployment", "metadata": {"name": "w"}, "spec": {"paused": False}}
    created = last_applied.creation_body(manifest, {"spec": {"replicas": 3}})
    assert created["spec"] == {"paused": False, "replicas": 3}
    assert ("spec", "replicas") not in _record(created)
    # So a later patch without replicas never nulls the count the autoscaler owns.
    body = last_applied.patch_body(manifest, _record(created))
    assert "replicas" not in body["spec"]
    assert manifest == {"kind": "Deployment", "metadata": {"name": "w"}, "spec": {"paused": False}}


def test_service_annotations_from_the_spec_come_and_go() -> None:
    with_ann = builders.service(POOL, spec(servers={"service": {"annotations": {"lb": "int"}}}))
    without = builders.service(POOL, spec())
    body = last_applied.patch_body(without, _record(last_applied.creation_body(with_ann)))
    annotations = body["metadata"]["annotations"]
    assert annotations["lb"] is None
    assert ANN in annotations  # the annotations map itself is never nulled
