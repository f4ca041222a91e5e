"""The pool's security wiring, as pure builders (docs/kubernetes.md, "Secure by default"): the
tokens Secret and signing key as read-only volumes, the settings they feed, the ops port kept
off the Ingress, and the NetworkPolicies for each option."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from ffpool import names
from ffpool.settings import Settings
from ffpool_operator.decisions import auth_status
from ffpool_operator.manifests import deployments, network_policies, objects
from ffpool_operator.spec.credentials import BrokerCredentials
from ffpool_operator.spec.pool import PoolSpec
from tests.operator_harness.samples import POOL, spec

ANONYMOUS = spec(auth={"allowAnonymous": True})
POLICY_ON = {"enabled": True}


def _pod(s: PoolSpec, component: str) -> dict[str, Any]:
    dep = deployments.deployment(POOL, s, component, 1)
    pod: dict[str, Any] = dep["spec"]["template"]["spec"]
    return pod


def _container(s: PoolSpec, component: str) -> dict[str, Any]:
    container: dict[str, Any] = _pod(s, component)["containers"][0]
    return container


def _env(s: PoolSpec, component: str) -> dict[str, str]:
    plain = {e["name"]: e.get("value", "") for e in _container(s, component)["env"]}
    return {**objects.service_env(s), **plain}


def test_servers_mount_the_tokens_secret_read_only_and_workers_never_see_it() -> None:
    s = spec(auth={"tokensSecret": "team-tokens", "tokensKey": "tokens.txt"})
    server = _container(s, names.COMPONENT_SERVER)
    mounts = {m["name"]: m for m in server["volumeMounts"]}
    assert mounts["tokens"]["readOnly"] is True
    assert "subPath" not in mounts["tokens"]  # a subPath mount would never see an update
    assert _env(s, names.COMPONENT_SERVER)["AUTH_TOKENS_FILE"] == (
        f"{mounts['tokens']['mountPath']}/tokens.txt"
    )
    volumes = {v["name"]: v for v in _pod(s, names.COMPONENT_SERVER)["volumes"]}
    assert volumes["tokens"]["secret"]["secretName"] == "team-tokens"
    worker = _container(s, names.COMPONENT_WORKER)
    assert "tokens" not in {m["name"] for m in worker["volumeMounts"]}
    assert "AUTH_TOKENS_FILE" not in _env(s, names.COMPONENT_WORKER)
    assert "tokens" not in {v["name"] for v in _pod(s, names.COMPONENT_WORKER)["volumes"]}
    # Only through the volume: the tokens are no env value (env needs a restart to change).
    assert "team-tokens" not in str(server["env"]) + str(server["envFrom"])


@pytest.mark.parametrize("component", [names.COMPONENT_SERVER, names.COMPONENT_WORKER])
def test_both_components_mount_the_signing_key(component: str) -> None:
    container = _container(ANONYMOUS, component)
    mount = next(m for m in container["volumeMounts"] if m["name"] == "signing")
    assert mount["readOnly"] is True
    key_file = _env(ANONYMOUS, component)["SIGNING_KEY_FILE"]
    assert key_file == f"{mount['mountPath']}/{objects.SIGNING_KEY}"
    volume = next(v for v in _pod(ANONYMOUS, component)["volumes"] if v["name"] == "signing")
    assert volume["secret"]["secretName"] == objects.signing_secret_name(POOL) == "demo-signing"
    assert volume["secret"]["defaultMode"] == 0o440


def test_auth_settings_reach_the_config_map_as_settings_names() -> None:
    s = spec(auth={"allowAnonymous": True, "allowedOrigins": ["https://a.example", "http://b"]})
    env = objects.config_map(POOL, s)["data"]
    assert env["ALLOW_ANONYMOUS"] == "true"
    assert env["ALLOWED_ORIGINS"] == "https://a.example,http://b"
    assert env["OPS_PORT"] == "8082"
    assert objects.config_map(POOL, spec())["data"]["ALLOW_ANONYMOUS"] == "false"
    assert "ALLOWED_ORIGINS" not in objects.config_map(POOL, spec())["data"]
    fields = {f.upper() for f in Settings.model_fields}
    assert {"ALLOW_ANONYMOUS", "ALLOWED_ORIGINS", "OPS_PORT", "SIGNING_KEY_FILE"} <= fields
    assert "AUTH_TOKENS_FILE" in fields
    settings = Settings.model_validate({k.lower(): v for k, v in env.items()})
    assert settings.allowed_origins == ("https://a.example", "http://b")
    assert settings.ops_port == objects.OPS_PORT


def test_the_ops_port_is_declared_served_and_never_routed() -> None:
    for component in (names.COMPONENT_SERVER, names.COMPONENT_WORKER):
        container = _container(ANONYMOUS, component)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["ops"] == 8082
        # Probes stay on the HTTP port: the ops port is for the scraper.
        assert container["livenessProbe"]["httpGet"]["port"] == "http"
        assert container["readinessProbe"]["httpGet"]["port"] == "http"
        annotations = deployments.deployment(POOL, ANONYMOUS, component, 1)["spec"]["template"][
            "metadata"
        ]["annotations"]
        assert annotations["prometheus.io/port"] == "8082"
    svc = objects.service(POOL, spec(servers={"service": {"opsPort": 9102}}))
    ops = next(p for p in svc["spec"]["ports"] if p["name"] == "ops")
    assert (ops["port"], ops["targetPort"]) == (9102, "ops")
    ing = objects.ingress(POOL, spec(servers={"ingress": {"enabled": True}}))
    assert ing is not None
    paths = ing["spec"]["rules"][0]["http"]["paths"]
    assert {p["backend"]["service"]["port"]["name"] for p in paths} == {"ws", "http"}
    # The page is routed at "/" exactly: no Prefix "/" that would route everything else too.
    for path in (names.METRICS_PATH, names.DEAD_LETTERS_PATH, names.READY_PATH, "/other"):
        assert not any(_routes(p, path) for p in paths), path
    for path in (
        "/",
        "/static/app.js",
        "/ws",
        "/uploads",
        "/jobs/a/outputs/o.mp4",
        names.SCHEMA_PATH,
    ):
        assert any(_routes(p, path) for p in paths), path


def _routes(rule: dict[str, Any], path: str) -> bool:
    """Kubernetes Ingress matching: Exact, or Prefix by whole path elements."""
    if rule["pathType"] == "Exact":
        return bool(path == rule["path"])
    prefix = rule["path"].rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


def test_signing_secret_carries_a_key_and_is_owned() -> None:
    secret = objects.signing_secret(POOL, "ab" * 32)
    assert secret["stringData"] == {objects.SIGNING_KEY: "ab" * 32}
    assert secret["metadata"]["ownerReferences"][0]["uid"] == POOL.uid


def test_no_network_policy_unless_enabled() -> None:
    assert spec().network_policy.enabled is False


def _peers(rule: dict[str, Any], direction: str) -> list[dict[str, Any]]:
    peers: list[dict[str, Any]] = rule.get(direction, [])
    return peers


def _ports(rule: dict[str, Any]) -> set[tuple[Any, str]]:
    return {(p["port"], p["protocol"]) for p in rule["ports"]}


def test_servers_take_clients_from_the_ingress_controller_and_scrapes_on_ops() -> None:
    s = spec(networkPolicy=POLICY_ON)
    policy = network_policies.server_policy(POOL, s, 5671)["spec"]
    assert policy["podSelector"]["matchLabels"][names.LABEL_COMPONENT] == "server"
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    clients, scrape = policy["ingress"]
    assert _ports(clients) == {("ws", "TCP"), ("http", "TCP")}
    ns = _peers(clients, "from")[0]["namespaceSelector"]["matchLabels"]
    assert ns == {"kubernetes.io/metadata.name": "ingress-nginx"}
    assert _ports(scrape) == {("ops", "TCP")}
    assert _peers(scrape, "from") == s.network_policy.scrape_from
    dns, broker, webhooks = policy["egress"]
    assert _ports(dns) == {(53, "UDP"), (53, "TCP")}
    assert _ports(broker) == {(5671, "TCP")}
    assert "to" not in broker  # no peers given: any address, the broker's port only
    assert "ports" not in webhooks  # a callback URL may name any port
    assert {b["ipBlock"]["cidr"] for b in webhooks["to"]} == {"0.0.0.0/0", "::/0"}
    off = spec(networkPolicy={**POLICY_ON, "webhooks": False})
    egress = network_policies.server_policy(POOL, off, 5671)["spec"]["egress"]
    assert len(egress) == 2  # nothing else: no internet for servers without webhooks


def test_workers_reach_public_addresses_only_with_url_inputs() -> None:
    on = network_policies.worker_policy(POOL, spec(networkPolicy=POLICY_ON), None)["spec"]
    assert [_ports(r) for r in on["ingress"]] == [{("ops", "TCP")}]
    _dns, broker, public = on["egress"]
    assert _ports(broker) == {(5672, "TCP"), (5671, "TCP")}  # the URL's port not known yet
    assert "ports" not in public  # a URL may name any port
    blocks = {b["ipBlock"]["cidr"]: set(b["ipBlock"]["except"]) for b in public["to"]}
    assert {
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
    } <= blocks["0.0.0.0/0"]
    assert {"fc00::/7", "fe80::/10", "::1/128"} <= blocks["::/0"]
    off = spec(networkPolicy={**POLICY_ON, "urlInputs": False})
    assert len(network_policies.worker_policy(POOL, off, 5672)["spec"]["egress"]) == 2


def test_configured_peers_are_passed_through() -> None:
    broker = [{"ipBlock": {"cidr": "203.0.113.7/32"}}]
    clients = [{"podSelector": {"matchLabels": {"app": "gateway"}}}]
    s = spec(networkPolicy={**POLICY_ON, "brokerTo": broker, "ingressFrom": clients})
    policy = network_policies.server_policy(POOL, s, 5672)["spec"]
    assert _peers(policy["ingress"][0], "from") == clients
    assert _peers(policy["egress"][1], "to") == broker
    assert network_policies.policy_name(POOL, "worker") == "demo-worker-netpol"


@pytest.mark.parametrize(
    ("url", "port"),
    [
        ("amqp://u:p@rabbit:5673/%2F", 5673),
        ("amqps://u:p@rabbit/%2F", 5671),
        ("amqp://u:p@rabbit/", 5672),
        ("amqp://u:p@rabbit:bad/", None),
        (None, None),
    ],
)
def test_the_broker_port_comes_from_the_amqp_url(url: str | None, port: int | None) -> None:
    creds = BrokerCredentials(
        management_url="http://m",
        username="u",
        password=SecretStr("p"),
        amqp_url=None if url is None else SecretStr(url),
    )
    assert creds.amqp_port == port


def test_a_missing_tokens_secret_or_key_is_a_problem_with_a_reason() -> None:
    auth = spec(auth={"tokensSecret": "toks"}).auth
    missing = auth_status.tokens_problem(auth, None)
    assert missing is not None
    assert missing.reason == "TokensSecretMissing"
    assert "toks" in missing.message
    assert "ffpool token create" in missing.message
    no_key = auth_status.tokens_problem(auth, {"data": {"other": "eA=="}})
    assert no_key is not None
    assert no_key.reason == "TokensKeyMissing"
    assert auth_status.tokens_problem(auth, {"data": {"tokens": "eA=="}}) is None
    assert auth_status.tokens_problem(ANONYMOUS.auth, None) is None
