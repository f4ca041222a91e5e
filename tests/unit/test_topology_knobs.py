"""The topology's knobs are defined once (ffpool.topology.TopologyKnobs): Settings, Topology and
the operator's TopologySpec must agree on every name, variable, bound and default."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ffpool import names
from ffpool.settings import Settings, env_variables
from ffpool.topology import Topology, TopologyKnobs
from ffpool_operator.spec.pool import TopologySpec

# The public names: renaming a variable breaks every deployed pool's ConfigMap.
VARIABLES = {
    "job_exchange": "JOB_EXCHANGE",
    "job_queue": "JOB_QUEUE",
    "routing_key": "JOB_ROUTING_KEY",
    "dlq_queue": "DLQ_QUEUE",
    "events_exchange": "EVENTS_EXCHANGE",
    "control_exchange": "CONTROL_EXCHANGE",
    "message_ttl_ms": "QUEUE_MESSAGE_TTL_MS",
    "max_length": "QUEUE_MAX_LENGTH",
    "max_priority": "QUEUE_MAX_PRIORITY",
    "max_attempts": "MAX_ATTEMPTS",
    "queue_type": "QUEUE_TYPE",
    "priority_bands": "QUEUE_PRIORITY_BANDS",
}
CUSTOM = Topology(
    job_exchange="ex.1",
    job_queue="q.1",
    routing_key="rk.1",
    dlq_queue="d.1",
    events_exchange="ev.1",
    control_exchange="ctl.1",
    message_ttl_ms=5000,
    max_length=77,
    max_priority=4,
    max_attempts=6,
    queue_type="quorum",
    priority_bands=2,
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)


def _settings() -> Settings:
    return Settings(_env_file=None)


def test_every_knob_has_its_variable() -> None:
    assert list(TopologyKnobs.model_fields) == list(VARIABLES)
    assert Topology().env().keys() == set(VARIABLES.values())
    assert set(VARIABLES.values()) <= env_variables()


def test_every_knob_differs_from_its_default_in_the_custom_topology() -> None:
    assert all(getattr(CUSTOM, f) != d.default for f, d in Topology.model_fields.items())


def test_env_settings_topology_env_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in CUSTOM.env().items():
        monkeypatch.setenv(key, value)
    topo = Topology.from_settings(_settings())
    assert topo == CUSTOM
    assert topo.env() == CUSTOM.env()


def test_the_env_file_and_keywords_set_the_same_knobs(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in CUSTOM.env().items()))
    from_file = Settings(_env_file=env_file)
    assert Topology.from_settings(from_file) == CUSTOM
    keywords = {k.lower(): v for k, v in CUSTOM.env().items()}
    assert Topology.from_settings(Settings.model_validate(keywords)) == CUSTOM


def test_defaults_are_the_shared_names() -> None:
    expected = Topology(
        job_exchange=names.JOB_EXCHANGE,
        job_queue=names.JOB_QUEUE,
        routing_key=names.JOB_ROUTING_KEY,
        dlq_queue=names.DLQ_QUEUE,
        events_exchange=names.EVENTS_EXCHANGE,
        control_exchange=names.CONTROL_EXCHANGE,
    )
    assert Topology() == expected
    assert Topology.from_settings(_settings()) == expected
    assert TopologySpec().topology() == expected


def test_settings_topology_and_spec_share_each_definition() -> None:
    for name, knob in TopologyKnobs.model_fields.items():
        for model in (Settings, Topology, TopologySpec):
            field = model.model_fields[name]
            assert (field.annotation, field.metadata) == (knob.annotation, knob.metadata), name
            assert (field.default, field.description) == (knob.default, knob.description), name
            assert field.description, name


@pytest.mark.parametrize("value", ["0", "10", "high"])
def test_a_bad_priority_is_refused_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("QUEUE_MAX_PRIORITY", value)
    with pytest.raises(ValidationError, match="queue_max_priority") as caught:
        _settings()
    assert caught.value.error_count() == 1


def test_the_bounds_hold_in_the_topology_and_the_spec() -> None:
    with pytest.raises(ValidationError, match="less than or equal to 9"):
        Topology(max_priority=10)
    with pytest.raises(ValidationError, match="maxPriority"):
        TopologySpec.model_validate({"maxPriority": 10})
    with pytest.raises(ValidationError, match="job_queue"):
        Topology(job_queue="no spaces")


def test_field_names_are_not_new_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the documented variables count: MAX_LENGTH or ROUTING_KEY set for something else
    must not reach the queue."""
    monkeypatch.setenv("MAX_LENGTH", "5")
    monkeypatch.setenv("ROUTING_KEY", "other")
    assert Topology.from_settings(_settings()) == Topology()


def test_the_spec_takes_camel_case_names_only() -> None:
    spec = TopologySpec.model_validate({"routingKey": "rk.2", "maxAttempts": 7})
    assert spec.topology().env()["JOB_ROUTING_KEY"] == "rk.2"
    assert spec.topology().max_attempts == 7
    with pytest.raises(ValidationError, match="job_routing_key"):
        TopologySpec.model_validate({"job_routing_key": "rk.2"})
