"""The pool spec's security parts: who may use the pool (`auth`) and which pods may talk to whom
(`networkPolicy`). docs/kubernetes.md ("Secure by default") explains the choices."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from ffpool_operator.spec.camel import Camel, K8sName
from ffpool_operator.spec.rules import Rule

# A Secret's data key (Kubernetes: `[-._a-zA-Z0-9]+`, at most 253 characters).
SecretKey = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]


class SecretKeyRef(Camel):
    """One key of a Secret in the pool's namespace."""

    name: K8sName
    key: SecretKey


# One browser origin; ALLOWED_ORIGINS is comma-separated, so no commas and no spaces.
Origin = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[^,\s]+$")]
# A NetworkPolicyPeer (podSelector, namespaceSelector, ipBlock), passed through untouched like
# tolerations: the API server validates it when the NetworkPolicy is applied.
Peer = dict[str, Any]


def _namespace(name: str) -> Peer:
    # `kubernetes.io/metadata.name` is set on every namespace by the API server (1.22+).
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


class AuthSpec(Camel):
    """Who may use the pool: clients with a token from the tokens Secret, or (explicitly) anyone.
    Exactly one of `tokensSecret` and `allowAnonymous: true` (a rule on the pool spec)."""

    tokens_secret: K8sName | None = None
    """A Secret in the pool's namespace holding the tokens file (`ffpool token create` prints a
    line for it). Mounted read-only into server pods; edits reach them without a restart."""
    tokens_key: SecretKey = "tokens"
    """The key of the tokens file in that Secret."""
    allow_anonymous: bool = False
    """Serve clients without a token (all as the tenant `anonymous`)."""
    allowed_origins: Annotated[list[Origin], Field(max_length=64)] = Field(default_factory=list)
    """Browser origins allowed to open the WebSocket (ALLOWED_ORIGINS); empty: none."""


AUTH_RULE = Rule(
    cel="has(self.auth) && (has(self.auth.tokensSecret)"
    " != (has(self.auth.allowAnonymous) && self.auth.allowAnonymous))",
    message="auth: set exactly one of auth.tokensSecret (a Secret holding the tokens file,"
    " see `ffpool token create`) or auth.allowAnonymous: true (no authentication)",
    holds=lambda s: (s.auth.tokens_secret is not None) != s.auth.allow_anonymous,
)


class NetworkPolicySpec(Camel):
    """A NetworkPolicy per pool: servers take connections only from the Ingress controller and
    the scraper; workers only from the scraper. Egress: DNS, the broker and (s3 storage) the
    object store, plus public addresses for workers when `urlInputs` is on and for servers
    (webhooks) when `webhooks` is on. Enforced only where the CNI plugin supports
    NetworkPolicy."""

    enabled: bool = False
    ingress_from: Annotated[list[Peer], Field(max_length=32)] = Field(
        default_factory=lambda: [_namespace("ingress-nginx")]
    )
    """Who may reach the servers' client ports (WebSocket, HTTP): the Ingress controller."""
    scrape_from: Annotated[list[Peer], Field(max_length=32)] = Field(
        default_factory=lambda: [_namespace("monitoring")]
    )
    """Who may reach the ops port (/metrics, /dead-letters) of servers and workers."""
    broker_to: Annotated[list[Peer], Field(max_length=32)] = Field(default_factory=list)
    """Where the broker is (a namespaceSelector, or an ipBlock for one outside the cluster);
    empty: any address, on the broker's port only (from the AMQP URL in the Secret)."""
    dns_to: Annotated[list[Peer], Field(max_length=32)] = Field(
        default_factory=lambda: [
            {**_namespace("kube-system"), "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
        ]
    )
    """The cluster DNS (port 53, UDP and TCP)."""
    url_inputs: bool = True
    """Let workers fetch URL inputs: egress to public addresses (never private ranges nor cloud
    metadata). Off: URL inputs fail to connect; uploads and shared-volume paths still work."""
    storage_to: Annotated[list[Peer], Field(max_length=32)] = Field(default_factory=list)
    """With s3 storage: where the object store is (a namespaceSelector for an in-cluster one,
    an ipBlock); empty: any address on the endpoint's port, or public addresses on 443 for
    AWS S3 (no endpoint)."""
    webhooks: bool = True
    """Let servers deliver webhooks: egress to public addresses (never private ranges nor cloud
    metadata). Off: only `webhooksTo`; deliveries elsewhere fail and are retried."""
    webhooks_to: Annotated[list[Peer], Field(max_length=32)] = Field(default_factory=list)
    """More webhook receivers for the servers, e.g. in-cluster ones (which also need
    WEBHOOK_ALLOW_PRIVATE=true in `env`), on any port."""
