"""The chart grants exactly what the operator uses: every Kubernetes API call is derived from the
operator's code (its `client.<verb>(...)` calls, the kinds its builders produce, the resources its
kopf handlers watch) plus kopf's own needs, and compared with the rendered RBAC rules."""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml

from ffpool import names
from ffpool_operator import main
from ffpool_operator.kube import client
from ffpool_operator.manifests import deployments, disruption, monitoring, network_policies, objects
from ffpool_operator.spec.pool import PoolRef, PoolSpec
from tests import helmchart
from tests.helmchart import ROOT, manifests, of_kind

Permission = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb)
PACKAGE = ROOT / "operator" / "ffpool_operator"
# Server-side apply is a PATCH, authorized as `create` too when it creates the object; it reads
# nothing first (tests/cluster/test_server_side_apply.py shows both on the real API server).
CLIENT_VERBS = {
    "get": {"get"},
    "list": {"list"},
    "create": {"create"},
    "patch": {"patch"},
    "delete": {"delete"},
    "apply": {"patch", "create"},
}
KOPF_RESOURCE_DECORATORS = {
    "create",
    "update",
    "resume",
    "delete",
    "field",
    "event",
    "daemon",
    "timer",
    "index",
}
BUILDER_MODULES = {
    "objects": objects,
    "deployments": deployments,
    "network_policies": network_policies,
    "disruption": disruption,
    "monitoring": monitoring,
}


def _sample() -> tuple[PoolRef, PoolSpec]:
    docs = yaml.safe_load_all((ROOT / "examples" / "ffmpegpool.yaml").read_text())
    pool = next(d for d in docs if d and d["kind"] == names.CRD_KIND)
    spec = dict(pool["spec"])
    spec["servers"] = {**spec["servers"], "ingress": {"enabled": True, "host": "x.example"}}
    return PoolRef(name="p", namespace="ns", uid="u"), PoolSpec.model_validate(spec)


def _group_resource(kind: str) -> tuple[str, str]:
    prefix, plural = client.RESOURCES[kind]
    return ("" if prefix == "/api/v1" else prefix.split("/")[2]), plural


def _is_kube_receiver(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "kube") or (
        isinstance(node, ast.Attribute) and node.attr == "kube"
    )


def _builder_kind(call: ast.Call) -> str:
    """Kind of the manifest a objects./deployments. call returns, by calling it on a sample."""
    func = call.func
    assert isinstance(func, ast.Attribute), ast.dump(call)
    assert isinstance(func.value, ast.Name), ast.dump(call)
    builder = getattr(BUILDER_MODULES[func.value.id], func.attr)
    pool, spec = _sample()
    # Builders take the pool and, by parameter name, the spec, a signing key or a component
    # (the servers' PodDisruptionBudget is on by default); any other
    # parameter is optional (None).
    samples = {"pool": pool, "spec": spec, "key": "0" * 64, "component": names.COMPONENT_SERVER}
    args = [samples.get(name) for name in inspect.signature(builder).parameters]
    manifest: dict[str, Any] = builder(*args)
    return str(manifest["kind"])


def _assigned_call(scope: ast.AST, name: str) -> ast.Call:
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign | ast.NamedExpr) and isinstance(node.value, ast.Call):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return node.value
    raise AssertionError(f"cannot resolve what `{name}` holds")


def _kind_of(arg: ast.expr, scope: ast.AST) -> str:
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if (
        isinstance(arg, ast.Attribute)
        and isinstance(arg.value, ast.Name)
        and arg.value.id == "names"
    ):
        return str(getattr(names, arg.attr))
    if isinstance(arg, ast.Name):
        return _builder_kind(_assigned_call(scope, arg.id))
    if isinstance(arg, ast.Call):
        return _builder_kind(arg)
    raise AssertionError(f"unresolvable kind argument: {ast.unparse(arg)}")


def _client_calls() -> Iterator[tuple[Path, str, ast.Call, ast.AST]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for scope in ast.walk(tree):
            if not isinstance(scope, ast.AsyncFunctionDef | ast.FunctionDef):
                continue
            for node in ast.walk(scope):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in CLIENT_VERBS
                    and _is_kube_receiver(node.func.value)
                ):
                    yield path, node.func.attr, node, scope


def operator_client_permissions() -> set[Permission]:
    """What ffpool_operator's own Kubernetes client calls need."""
    perms: set[Permission] = set()
    for _, method, call, scope in _client_calls():
        group, resource = _group_resource(_kind_of(call.args[0], scope))
        sub = next((k.value for k in call.keywords if k.arg == "sub"), None)
        if isinstance(sub, ast.Constant):
            resource = f"{resource}/{sub.value!s}"
        perms |= {(group, resource, verb) for verb in CLIENT_VERBS[method]}
    return perms


def _kopf_posts_events() -> bool:
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "kopf"
                and node.attr in {"info", "warn", "event", "exception"}
            ):
                return True
    return False


def _resolve_resource(dec: ast.Call, module: Any) -> tuple[str, str]:
    """(group, plural) of `@kopf.on.x(*RESOURCE)` or `@kopf.on.x("group", "v1", "plural")`."""
    if len(dec.args) == 1 and isinstance(dec.args[0], ast.Starred):
        starred = dec.args[0].value
        assert isinstance(starred, ast.Name), ast.unparse(dec)
        group, _, plural = getattr(module, starred.id)
        return str(group), str(plural)
    values = [a.value for a in dec.args if isinstance(a, ast.Constant)]
    assert len(values) == len(dec.args) >= 2, ast.unparse(dec)
    return str(values[0]), str(values[-1])


def handler_resources() -> set[tuple[str, str]]:
    """Resources the operator's kopf handlers serve, from their decorators."""
    found: set[tuple[str, str]] = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        module = importlib.import_module(
            ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        )
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for dec in node.decorator_list:
                if (
                    isinstance(dec, ast.Call)
                    and isinstance(dec.func, ast.Attribute)
                    and dec.func.attr in KOPF_RESOURCE_DECORATORS
                    and ast.unparse(dec.func).startswith("kopf.")
                ):
                    found.add(_resolve_resource(dec, module))
    return found


def kopf_permissions(scope: str) -> tuple[set[Permission], set[Permission]]:
    """(per-namespace, cluster-wide) permissions kopf itself needs for the operator's handlers."""
    resources = handler_resources()
    assert resources, "no kopf resource handlers found"
    per_ns: set[Permission] = set()
    for group, plural in resources:
        # Watch the resource; patch it for the finalizer and the progress/diffbase annotations.
        per_ns |= {(group, plural, verb) for verb in ("list", "watch", "patch")}
    if _kopf_posts_events() or kopf.OperatorSettings().posting.enabled:
        per_ns.add(("", "events", "create"))
    # kopf observes CRDs always; namespaces only when it serves a list of namespaces.
    cluster = {("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch")}
    if scope == "namespace":
        cluster |= {("", "namespaces", v) for v in ("list", "watch")}
    return per_ns, cluster


def owner_reference_permissions() -> set[Permission]:
    """blockOwnerDeletion needs `update` on the owner's finalizers (OwnerReferencesPermission-
    Enforcement admission): https://kubernetes.io/docs/reference/access-authn-authz/admission-controllers/#ownerreferencespermissionenforcement"""
    pool, _ = _sample()
    if not objects.owner_reference(pool).get("blockOwnerDeletion"):
        return set()
    return {(names.API_GROUP, f"{names.CRD_PLURAL}/finalizers", "update")}


def required(scope: str) -> tuple[set[Permission], set[Permission]]:
    kopf_ns, kopf_cluster = kopf_permissions(scope)
    return operator_client_permissions() | owner_reference_permissions() | kopf_ns, kopf_cluster


def granted(rules: list[dict[str, Any]]) -> set[Permission]:
    out: set[Permission] = set()
    for rule in rules:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule  # no resourceNames/urls
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out |= {(group, resource, verb) for verb in rule["verbs"]}
    return out


def test_derivation_sees_the_known_calls() -> None:
    """Guards the derivation itself: a refactor that hides calls from it must fail here."""
    perms = operator_client_permissions()
    assert ("", "secrets", "get") in perms
    assert ("apps", "deployments", "patch") in perms
    assert ("", "pods", "list") in perms
    assert ("", "secrets", "create") in perms  # the signing key, created once
    assert ("networking.k8s.io", "networkpolicies", "patch") in perms
    assert ("policy", "poddisruptionbudgets", "delete") in perms
    assert (names.API_GROUP, f"{names.CRD_PLURAL}/status", "patch") in perms
    assert len(list(_client_calls())) >= 8
    assert handler_resources() == {(names.API_GROUP, names.CRD_PLURAL)}


def test_operator_runs_without_peering() -> None:
    """Standalone kopf needs no kopfpeerings RBAC; peering would need more rules here."""
    assert "standalone=True" in inspect.getsource(main.operator)


def test_cluster_scope_grants_exactly_what_is_used() -> None:
    [role] = of_kind(manifests(), "ClusterRole")
    per_ns, cluster = required("cluster")
    have = granted(role["rules"])
    assert have - (per_ns | cluster) == set(), "granted but never used"
    assert (per_ns | cluster) - have == set(), "used but not granted"


@pytest.mark.parametrize("variant", ["namespaced", "namespaced-release-ns"])
def test_namespace_scope_grants_exactly_what_is_used(variant: str) -> None:
    objs = manifests(helmchart.VARIANTS[variant])
    per_ns, cluster = required("namespace")
    for role in of_kind(objs, "Role"):
        have = granted(role["rules"])
        assert have == per_ns, (sorted(have - per_ns), sorted(per_ns - have))
    [observer] = of_kind(objs, "ClusterRole")
    assert granted(observer["rules"]) == cluster


def test_no_wildcards_and_no_secret_listing() -> None:
    for values in helmchart.VARIANTS.values():
        for role in of_kind(manifests(values), "ClusterRole") + of_kind(manifests(values), "Role"):
            perms = granted(role["rules"])
            assert not any("*" in part for perm in perms for part in perm), perms
            secret_verbs = {verb for group, res, verb in perms if (group, res) == ("", "secrets")}
            # Read by name, and create the signing key once: never list, patch or delete.
            assert secret_verbs <= {"get", "create"}


def test_bindings_point_at_the_operator_service_account() -> None:
    objs = manifests()
    [account] = of_kind(objs, "ServiceAccount")
    [binding] = of_kind(objs, "ClusterRoleBinding")
    [deployment] = of_kind(objs, "Deployment")
    assert binding["roleRef"]["name"] == of_kind(objs, "ClusterRole")[0]["metadata"]["name"]
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": account["metadata"]["namespace"],
        }
    ]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
