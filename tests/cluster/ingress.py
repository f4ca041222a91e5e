"""An Ingress controller stand-in: Debian's nginx on loopback, configured from the cluster's
Ingress objects and their Services' EndpointSlices, the way ingress-nginx does it.

Routing follows each rule's paths (Prefix and Exact) to the backend Service's ready endpoints;
the annotations users put on a pool's Ingress for ingress-nginx (proxy read/send timeouts, body
size) become the same nginx directives; WebSocket upgrades are proxied. A thread re-renders the
configuration every second and reloads nginx (SIGHUP, no dropped connections) when a pod
comes or goes (one `kubectl get` a second). docs/cluster.md, "The Ingress".
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.cluster.controlplane import ControlPlane
from tests.cluster.ports import free_port
from tests.cluster.processes import stop_group
from tests.polling import poll_until

ANNOTATION = "nginx.ingress.kubernetes.io/"
# ingress-nginx's defaults for the annotations we honour (its ConfigMap documentation).
DEFAULTS = {"proxy-read-timeout": "60", "proxy-send-timeout": "60", "proxy-body-size": "1m"}


def _upstream_name(namespace: str, service: str, port: str) -> str:
    return f"{namespace}_{service}_{port}".replace("-", "_").replace(".", "_")


def endpoints(slices: list[dict[str, Any]], port_name: str) -> list[str]:
    """Ready `ip:port` pairs of one Service port, from its EndpointSlices."""
    out: set[str] = set()
    for piece in slices:
        ports = {p.get("name") or "": p["port"] for p in piece.get("ports") or []}
        if port_name not in ports:
            continue
        for endpoint in piece.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready"):
                out.update(f"{ip}:{ports[port_name]}" for ip in endpoint["addresses"])
    return sorted(out)


def render(
    ingresses: list[dict[str, Any]], slices: dict[tuple[str, str], list[dict[str, Any]]], port: int
) -> str:
    """nginx.conf for `ingresses`; `slices` maps (namespace, service) to its EndpointSlices."""
    upstreams: dict[str, list[str]] = {}
    servers: list[str] = []
    for ing in ingresses:
        namespace = ing["metadata"]["namespace"]
        notes = {
            **DEFAULTS,
            **{
                k.removeprefix(ANNOTATION): v
                for k, v in (ing["metadata"].get("annotations") or {}).items()
                if k.startswith(ANNOTATION)
            },
        }
        for rule in ing["spec"].get("rules") or []:
            locations = []
            for path in rule.get("http", {}).get("paths") or []:
                backend = path["backend"]["service"]
                port_ref = backend["port"].get("name") or str(backend["port"].get("number"))
                name = _upstream_name(namespace, backend["name"], port_ref)
                upstreams[name] = endpoints(slices.get((namespace, backend["name"]), []), port_ref)
                match = "=" if path.get("pathType") == "Exact" else ""
                locations.append(
                    f"    location {match} {path['path']} {{\n"
                    f"      proxy_pass http://{name};\n"
                    "      proxy_http_version 1.1;\n"
                    "      proxy_set_header Upgrade $http_upgrade;\n"
                    "      proxy_set_header Connection $connection_upgrade;\n"
                    "      proxy_set_header Host $host;\n"
                    # ingress-nginx's defaults: stream both ways, no temporary files.
                    "      proxy_request_buffering off;\n"
                    "      proxy_buffering off;\n"
                    f"      proxy_read_timeout {notes['proxy-read-timeout']}s;\n"
                    f"      proxy_send_timeout {notes['proxy-send-timeout']}s;\n"
                    "    }\n"
                )
            host = rule.get("host") or "_"
            servers.append(
                f"  server {{\n    listen 127.0.0.1:{port};\n    server_name {host};\n"
                f"    client_max_body_size {notes['proxy-body-size']};\n"
                + "".join(locations)
                + "  }\n"
            )
    blocks = []
    for name, addresses in sorted(upstreams.items()):
        # No ready endpoint: a server that refuses, so clients get 502 as from ingress-nginx.
        lines = [f"    server {a};\n" for a in addresses] or ["    server 127.0.0.1:9 down;\n"]
        blocks.append(f"  upstream {name} {{\n{''.join(lines)}  }}\n")
    return (
        "map $http_upgrade $connection_upgrade { default upgrade; '' close; }\n"
        + "".join(blocks)
        + "".join(servers)
    )


@dataclass
class IngressController:
    plane: ControlPlane
    workdir: Path
    port: int = field(default_factory=free_port)
    _stop: threading.Event = field(default_factory=threading.Event)
    _nginx: subprocess.Popen[bytes] | None = None
    _thread: threading.Thread | None = None
    _current: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> IngressController:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write(self._render())
        with (self.workdir / "stderr.log").open("ab") as stderr:
            self._nginx = subprocess.Popen(
                [
                    nginx,
                    "-c",
                    str(self.workdir / "nginx.conf"),
                    "-p",
                    str(self.workdir),
                    "-g",
                    "daemon off;",
                ],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        poll_until(self._listening, timeout=20, what="nginx listening")
        self._thread = threading.Thread(target=self._loop, name="ingress-sync", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        stop_group(self._nginx, 10, signal.SIGQUIT)  # nginx's graceful stop

    def _listening(self) -> bool:
        assert self._nginx is not None
        if self._nginx.poll() is not None:
            raise RuntimeError((self.workdir / "stderr.log").read_text(errors="replace"))
        return (self.workdir / "nginx.pid").exists()

    def _render(self) -> str:
        items = json.loads(
            self.plane.kubectl("get", "ingresses,endpointslices", "-A", "-o", "json")
        )["items"]
        ingresses = [i for i in items if i["kind"] == "Ingress"]
        slices: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for piece in items:
            owner = (piece["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
            if piece["kind"] == "EndpointSlice" and owner:
                slices.setdefault((piece["metadata"]["namespace"], owner), []).append(piece)
        return render(ingresses, slices, self.port)

    def _write(self, body: str) -> None:
        temp = self.workdir / "temp"
        temp.mkdir(exist_ok=True)
        conf = (
            f"pid {self.workdir}/nginx.pid;\nerror_log {self.workdir}/error.log warn;\n"
            "worker_processes 1;\nevents { worker_connections 1024; }\n"
            f"http {{\n  access_log {self.workdir}/access.log;\n"
            + "".join(
                f"  {kind}_temp_path {temp}/{kind};\n"
                for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            )
            + body
            + "}\n"
        )
        (self.workdir / "nginx.conf").write_text(conf, encoding="utf-8")
        self._current = body

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                body = self._render()
            except (RuntimeError, ValueError, KeyError):
                continue  # the API server was briefly busy; the next turn tries again
            if body != self._current and self._nginx is not None:
                self._write(body)
                self._nginx.send_signal(signal.SIGHUP)
