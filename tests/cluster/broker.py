"""A RabbitMQ user the cluster's pods can use. The local broker's `guest` works only from
loopback (RabbitMQ's `loopback_users`), and pods connect from the node bridge, so the tests make a
user of their own through the management API, tagged policymaker (the operator declares queues,
bindings and the pool's policy)."""

from __future__ import annotations

import base64
import json
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass

MGMT = "http://127.0.0.1:15672"


def _call(method: str, path: str, body: object | None = None) -> bool:
    """One management API call as `guest` (from loopback); False for 404."""
    request = urllib.request.Request(
        f"{MGMT}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic " + base64.b64encode(b"guest:guest").decode(),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10):
            return True
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise


@dataclass(frozen=True)
class BrokerUser:
    username: str
    password: str
    host: str

    @property
    def amqp_url(self) -> str:
        return f"amqp://{self.username}:{self.password}@{self.host}:5672/%2F"

    @property
    def management_url(self) -> str:
        return f"http://{self.host}:15672"

    def secret_manifest(self, name: str, namespace: str) -> str:
        """The pool's Secret, with the keys examples/rabbitmq-secret.yaml documents."""
        return json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace},
                "type": "Opaque",
                "stringData": {
                    "username": self.username,
                    "password": self.password,
                    "amqp-url": self.amqp_url,
                    "management-url": self.management_url,
                },
            }
        )

    def delete(self) -> None:
        _call("DELETE", f"/api/users/{self.username}")

    def queue_exists(self, name: str) -> bool:
        return _call("GET", f"/api/queues/%2F/{name}")


def remove_topology(queues: tuple[str, ...], exchanges: tuple[str, ...]) -> None:
    """What a pool with the default names leaves on the shared local broker (its queues are
    retained by design), so later tests declare them afresh; and any policy that targets them."""
    for name in queues:
        _call("DELETE", f"/api/queues/%2F/{name}")
    for name in exchanges:
        _call("DELETE", f"/api/exchanges/%2F/{name}")
    request = urllib.request.Request(
        f"{MGMT}/api/policies/%2F",
        headers={"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        policies = json.load(answer)
    for policy in policies:
        if any(policy["pattern"] == f"^{q}$" for q in queues):
            _call("DELETE", f"/api/policies/%2F/{policy['name']}")


def create_user(host: str, username: str = "ffpool-cluster-test") -> BrokerUser:
    password = secrets.token_hex(12)
    _call("PUT", f"/api/users/{username}", {"password": password, "tags": "policymaker"})
    _call(
        "PUT", f"/api/permissions/%2F/{username}", {"configure": ".*", "write": ".*", "read": ".*"}
    )
    return BrokerUser(username, password, host)
