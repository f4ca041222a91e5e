"""The Dockerfiles and .dockerignore, parsed (no container engine here): multi-stage, a slim
final stage with a numeric non-root user, no compilers, pip or apt caches in it, OCI labels, and
commands that match the CLI and the operator's pod specs."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from dataclasses import dataclass, field

import pytest

from ffpool import cli, names
from ffpool.settings import Settings
from ffpool_operator import main as operator_main
from ffpool_operator.manifests import deployments
from ffpool_operator.spec.pool import PoolRef, PoolSpec
from tests.helmchart import ROOT

SERVICE = ROOT / "service" / "Dockerfile"
OPERATOR = ROOT / "operator" / "Dockerfile"
LEFT_OUT = (
    ".env",
    ".git/config",
    ".venv/bin/python",
    "tests/conftest.py",
    "media/x.mp4",
    "charts/ffpool-operator/values.yaml",
    "service/ffpool/__pycache__/cli.pyc",
)
COMPILERS = ("gcc", "g++", "build-essential", "clang", "make ", "python3-dev", "libc6-dev")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages). Continuation lines joined, comments dropped."""
    logical = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in filter(None, (ln.strip() for ln in logical.splitlines())):
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            base, _, name = re.sub(r"\s+AS\s+", " AS ", args, flags=re.I).partition(" AS ")
            for arg, default in global_args.items():
                base = base.replace(f"${{{arg}}}", default)
            stages.append(Stage(base.strip(), name.strip() or None))
        elif not stages and keyword == "ARG":
            arg, _, default = args.partition("=")
            global_args[arg.strip()] = default.strip()
        elif stages:
            stages[-1].instructions.append((keyword, args.strip()))
    return global_args, stages


def _final(path: object) -> Stage:
    return parse(SERVICE.read_text() if path == "service" else OPERATOR.read_text())[1][-1]


@pytest.mark.parametrize("path", [SERVICE, OPERATOR], ids=["service", "operator"])
def test_multi_stage_slim_non_root(path: object) -> None:
    _, stages = parse(path.read_text())  # type: ignore[attr-defined]
    assert len(stages) >= 2
    builder, final = stages[0], stages[-1]
    assert builder.name == "builder"
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", final.base), final.base
    [user] = final.all("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), user
    assert int(uid) >= 10000, user
    assert gid.isdigit(), user
    assert final.instructions.index(("USER", user)) > max(
        i for i, (kw, _) in enumerate(final.instructions) if kw in {"RUN", "COPY"}
    ), "USER must come after every RUN/COPY that needs root"


@pytest.mark.parametrize("path", [SERVICE, OPERATOR], ids=["service", "operator"])
def test_no_build_tools_or_caches_in_the_final_image(path: object) -> None:
    _, stages = parse(path.read_text())  # type: ignore[attr-defined]
    builder, final = stages[0], stages[-1]
    assert "PIP_NO_CACHE_DIR=1" in " ".join(builder.all("ENV"))
    assert "pip cache" not in path.read_text()  # type: ignore[attr-defined]
    for run in final.all("RUN"):
        assert "pip " not in run, "no pip in the final stage: the venv comes from the builder"
        assert not any(tool in run + " " for tool in COMPILERS), run
        if "apt-get install" in run:
            assert "--no-install-recommends" in run
            assert "rm -rf /var/lib/apt/lists/*" in run, "apt lists must go in the same layer"
    copies = final.all("COPY")
    assert copies
    assert all(c.startswith("--from=builder /opt/venv") for c in copies), copies


@pytest.mark.parametrize("path", [SERVICE, OPERATOR], ids=["service", "operator"])
def test_oci_labels_carry_source_and_version(path: object) -> None:
    final = parse(path.read_text())[1][-1]  # type: ignore[attr-defined]
    assert any(a.startswith("VERSION") for a in final.all("ARG"))
    labels = " ".join(final.all("LABEL"))
    assert 'org.opencontainers.image.version="${VERSION}"' in labels
    assert "org.opencontainers.image.source=" in labels
    assert "org.opencontainers.image.revision=" in labels


def test_service_image_has_ffmpeg_and_runs_both_roles() -> None:
    final = _final("service")
    runs = " ".join(final.all("RUN"))
    assert re.search(r"apt-get install [^&]*\bffmpeg\b", runs)
    assert json.loads(final.all("ENTRYPOINT")[0]) == ["ffpool"]
    assert json.loads(final.all("CMD")[0]) == ["server"]
    # The operator's pods run this image with their own command and args: both must be the CLI.
    spec = PoolSpec.model_validate(
        {
            "image": "i",
            "rabbitmq": {"secretName": "s"},
            "storage": {"claimName": "c"},
            "auth": {"allowAnonymous": True},
        }
    )
    pool = PoolRef(name="p", namespace="n", uid="u")
    for component in (names.COMPONENT_SERVER, names.COMPONENT_WORKER):
        container = deployments.container(pool, spec, component, spec.workers.resources)
        assert container["command"] == json.loads(final.all("ENTRYPOINT")[0])
        assert cli.build_parser().parse_args(container["args"]).command == component
    exposed = set(" ".join(final.all("EXPOSE")).split())
    defaults = Settings()
    assert {str(defaults.ws_port), str(defaults.http_port), str(defaults.ops_port)} <= exposed
    [health] = final.all("HEALTHCHECK")
    assert f"127.0.0.1:{defaults.http_port}{names.LIVE_PATH}" in health


def test_service_image_env_names_are_settings() -> None:
    """Every setting the image presets must be a real ffpool setting (upper-cased field)."""
    fields = {name.upper() for name in Settings.model_fields}
    env = " ".join(_final("service").all("ENV"))
    preset = {m for m in re.findall(r"\b([A-Z_]+)=", env)}
    own = {n for n in preset if not n.startswith("PYTHON") and n not in {"PATH"}}
    assert own
    assert own <= fields, own - fields


def test_operator_image_entrypoint_is_the_operator_cli() -> None:
    final = _final("operator")
    assert json.loads(final.all("ENTRYPOINT")[0]) == ["python", "-m", "ffpool_operator.main"]
    assert callable(operator_main.main)
    assert "ffmpeg" not in " ".join(final.all("RUN"))
    exposed = set(" ".join(final.all("EXPOSE")).split())
    assert {"8080", "9090"} <= exposed


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def _included(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    keep = True
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pat) or path.startswith(pat + "/"):
            keep = negate
    return keep


def test_dockerignore_sends_only_the_packages() -> None:
    patterns = _dockerignore()
    assert patterns[0] == "*", "an allow-list: everything else stays out of the context"
    for path in (
        "pyproject.toml",
        "service/ffpool/cli/__init__.py",
        "operator/ffpool_operator/main.py",
    ):
        assert _included(path, patterns), path
    for path in LEFT_OUT:
        assert not _included(path, patterns), path


def test_dockerignore_keeps_what_pyproject_needs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = _dockerignore()
    for where in project["tool"]["setuptools"]["packages"]["find"]["where"]:
        packages = [p for p in (ROOT / where).iterdir() if (p / "__init__.py").is_file()]
        assert packages
        for package in packages:
            assert _included(f"{where}/{package.name}/__init__.py", patterns), package
    readme = project["project"].get("readme")
    if isinstance(readme, str):
        assert _included(readme, patterns)
