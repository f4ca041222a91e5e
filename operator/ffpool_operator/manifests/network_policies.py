"""Pure builders of a pool's NetworkPolicies (one for its servers, one for its workers: policies
add up, so one selecting both would give servers the workers' egress). docs/kubernetes.md
("NetworkPolicy") explains each rule.

Both policies list Ingress and Egress in `policyTypes`, so everything not listed is denied:
- servers: in from `ingressFrom` on the client ports, from `scrapeFrom` on the ops port; out to
  DNS, the broker, the object store (s3 storage) and, with `webhooks`, public addresses (any
  port: a callback URL may name one) plus `webhooksTo`.
- workers: in from `scrapeFrom` on the ops port; out to DNS, the broker, the object store and,
  with `urlInputs`, public addresses (any port: a URL may name one).
Kubelet probes come from the node and are allowed by NetworkPolicy semantics
(https://kubernetes.io/docs/concepts/services-networking/network-policies/).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ffpool import names
from ffpool_operator.manifests.objects import Manifest, child_name, metadata, selector
from ffpool_operator.spec.pool import PoolRef, PoolSpec
from ffpool_operator.spec.security import Peer

HTTPS_PORT = 443
AMQP_PORTS = (5672, 5671)  # AMQP and AMQPS (IANA), when the URL's port is not known yet
# Never reachable from a worker, even with URL inputs on: private and shared ranges (RFC 1918,
# RFC 6598, which also holds Alibaba's metadata 100.100.100.200), loopback, link-local (cloud
# metadata 169.254.169.254 among it), and IPv6 unique-local (AWS fd00:ec2::254) and link-local.
# The service's own SSRF guard (ffpool.ffmpeg.url_guard) checks each resolved address too.
PRIVATE_V4 = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "0.0.0.0/8",
)
PRIVATE_V6 = ("fc00::/7", "fe80::/10", "::1/128", "::/128")


def policy_name(pool: PoolRef, component: str) -> str:
    return child_name(pool, f"{component}-netpol")


def _ports(*ports: int | str, protocol: str = "TCP") -> list[dict[str, Any]]:
    return [{"port": p, "protocol": protocol} for p in ports]


def _rule(direction: str, peers: list[Peer], ports: list[dict[str, Any]]) -> dict[str, Any]:
    """An ingress (`from`) or egress (`to`) rule; no peers means any peer, on these ports."""
    out: dict[str, Any] = {"ports": ports}
    if peers:
        out[direction] = [dict(p) for p in peers]
    return out


def _public_peers() -> list[Peer]:
    return [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_V4)}},
        {"ipBlock": {"cidr": "::/0", "except": list(PRIVATE_V6)}},
    ]


def _public_egress() -> dict[str, Any]:
    return {"to": _public_peers()}


def endpoint_port(endpoint: str) -> int:
    """The port of an S3 endpoint URL (its pattern in spec/storage.py admits no bad port)."""
    url = urlsplit(endpoint)
    return url.port or (443 if url.scheme == "https" else 80)


def _storage_egress(spec: PoolSpec) -> list[dict[str, Any]]:
    """The object store: `storageTo` peers (else any address) on the endpoint's port; AWS S3
    (no endpoint) is public addresses on 443, unless `storageTo` says where (VPC endpoints)."""
    s3 = spec.storage.s3
    if s3 is None:
        return []
    peers = spec.network_policy.storage_to
    if s3.endpoint is not None:
        return [_rule("to", peers, _ports(endpoint_port(s3.endpoint)))]
    return [_rule("to", peers or _public_peers(), _ports(HTTPS_PORT))]


def _broker_ports(spec: PoolSpec, broker_port: int | None) -> list[int]:
    """The AMQP URL's port (unknown: the usual ones) and those of `rabbitmq.addresses`."""
    ports = [broker_port] if broker_port else list(AMQP_PORTS)
    extra = (int(a.rsplit(":", 1)[1]) for a in spec.rabbitmq.addresses)
    return ports + sorted({p for p in extra if p not in ports and 0 < p < 65536})


def _common_egress(spec: PoolSpec, broker_port: int | None) -> list[dict[str, Any]]:
    np = spec.network_policy
    dns = _ports(53, protocol="UDP") + _ports(53)
    broker = _ports(*_broker_ports(spec, broker_port))
    return [_rule("to", np.dns_to, dns), _rule("to", np.broker_to, broker), *_storage_egress(spec)]


def _webhook_egress(spec: PoolSpec) -> list[dict[str, Any]]:
    """Servers deliver webhooks: public addresses (a callback URL may name any port) with
    `webhooks`, and the `webhooksTo` peers."""
    np = spec.network_policy
    peers = (_public_peers() if np.webhooks else []) + [dict(p) for p in np.webhooks_to]
    return [{"to": peers}] if peers else []


def _policy(
    pool: PoolRef, component: str, ingress: list[dict[str, Any]], egress: list[dict[str, Any]]
) -> Manifest:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(pool, policy_name(pool, component), component),
        "spec": {
            "podSelector": {"matchLabels": selector(pool, component)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    }


def server_policy(pool: PoolRef, spec: PoolSpec, broker_port: int | None) -> Manifest:
    np = spec.network_policy
    ingress = [
        _rule("from", np.ingress_from, _ports("ws", "http")),
        _rule("from", np.scrape_from, _ports("ops")),
    ]
    egress = _common_egress(spec, broker_port) + _webhook_egress(spec)
    return _policy(pool, names.COMPONENT_SERVER, ingress, egress)


def worker_policy(pool: PoolRef, spec: PoolSpec, broker_port: int | None) -> Manifest:
    egress = _common_egress(spec, broker_port)
    if spec.network_policy.url_inputs:
        egress.append(_public_egress())
    ingress = [_rule("from", spec.network_policy.scrape_from, _ports("ops"))]
    return _policy(pool, names.COMPONENT_WORKER, ingress, egress)
