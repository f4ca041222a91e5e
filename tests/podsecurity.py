"""A field-by-field check of the Kubernetes "restricted" Pod Security Standard (plus the
baseline rules it includes) for a Pod spec, a pod template, or a workload manifest. Reusable:
the Helm chart tests call `violations(manifest)` on rendered Deployments too.
https://kubernetes.io/docs/concepts/security/pod-security-standards/
"""

from __future__ import annotations

from typing import Any

ALLOWED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
BASELINE_CAPS = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
}


def pod_spec_of(manifest: dict[str, Any]) -> dict[str, Any]:
    if manifest.get("kind") == "Pod":
        return dict(manifest["spec"])
    if "template" in manifest.get("spec", {}):
        return dict(manifest["spec"]["template"]["spec"])
    if "containers" in manifest:
        return manifest
    raise ValueError(f"no pod spec in {manifest.get('kind')}")


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        *pod.get("containers", []),
        *pod.get("initContainers", []),
        *pod.get("ephemeralContainers", []),
    ]


def _pod_level(pod: dict[str, Any]) -> list[str]:
    out = []
    psc = pod.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            out.append(f"pod: {field} must be false")
    for vol in pod.get("volumes", []):
        kinds = set(vol) - {"name"}
        if not kinds <= ALLOWED_VOLUME_TYPES:
            out.append(f"volume {vol.get('name')}: type {sorted(kinds)} not allowed")
    for sysctl in psc.get("sysctls", []):
        if sysctl.get("name") not in SAFE_SYSCTLS:
            out.append(f"pod: sysctl {sysctl.get('name')} not allowed")
    if psc.get("runAsUser") == 0:
        out.append("pod: runAsUser must not be 0")
    if (psc.get("seLinuxOptions") or {}).get("type") not in (
        None,
        "",
        "container_t",
        "container_init_t",
        "container_kvm_t",
        "container_engine_t",
    ):
        out.append("pod: seLinuxOptions.type not allowed")
    return out


def _seccomp_ok(profile: dict[str, Any] | None) -> bool | None:
    if not profile:
        return None
    return profile.get("type") in ("RuntimeDefault", "Localhost")


def _container(c: dict[str, Any], psc: dict[str, Any]) -> list[str]:
    name = f"container {c.get('name')}"
    sc = c.get("securityContext") or {}
    out = []
    if sc.get("privileged"):
        out.append(f"{name}: privileged")
    if sc.get("allowPrivilegeEscalation") is not False:
        out.append(f"{name}: allowPrivilegeEscalation must be false")
    caps = sc.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []):
        out.append(f"{name}: capabilities.drop must include ALL")
    if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
        out.append(f"{name}: only NET_BIND_SERVICE may be added")
    if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
        out.append(f"{name}: runAsNonRoot must be true")
    if sc.get("runAsUser", psc.get("runAsUser")) == 0:
        out.append(f"{name}: runAsUser must not be 0")
    seccomp = _seccomp_ok(sc.get("seccompProfile"))
    if seccomp is False or (seccomp is None and not _seccomp_ok(psc.get("seccompProfile"))):
        out.append(f"{name}: seccompProfile must be RuntimeDefault or Localhost")
    if sc.get("procMount") not in (None, "Default"):
        out.append(f"{name}: procMount must be Default")
    if any(p.get("hostPort") for p in c.get("ports", [])):
        out.append(f"{name}: hostPort not allowed")
    return out


def violations(manifest: dict[str, Any]) -> list[str]:
    """Every restricted-profile violation found; empty when the pod would be admitted."""
    pod = pod_spec_of(manifest)
    psc = pod.get("securityContext") or {}
    out = _pod_level(pod)
    for c in _containers(pod):
        out.extend(_container(c, psc))
    return out


def hardening_gaps(manifest: dict[str, Any]) -> list[str]:
    """Beyond the standard: what ffpool also promises (read-only root, numeric non-root user,
    no service-account token)."""
    pod = pod_spec_of(manifest)
    psc = pod.get("securityContext") or {}
    out = []
    if pod.get("automountServiceAccountToken") is not False:
        out.append("pod: automountServiceAccountToken should be false")
    for c in _containers(pod):
        sc = c.get("securityContext") or {}
        if sc.get("readOnlyRootFilesystem") is not True:
            out.append(f"container {c.get('name')}: readOnlyRootFilesystem should be true")
        if not isinstance(sc.get("runAsUser", psc.get("runAsUser")), int):
            out.append(f"container {c.get('name')}: runAsUser should be numeric")
    return out
