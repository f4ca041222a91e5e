"""The architecture, read from the source with `ast`: short modules and functions, no import
cycles, layers that import only downwards (pure core, thin edges), and structured log calls.

Each import statement counts, wherever it stands: at module level, inside a function (a lazy
import) or under `if TYPE_CHECKING:`. A layer table lists units (a package or a module, matched
by the longest dotted prefix) from the bottom up; a unit may import itself and units of lower
layers only, never a peer of its own layer nor anything above it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "ffpool": ROOT / "service" / "ffpool",
    "ffpool_operator": ROOT / "operator" / "ffpool_operator",
}
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
# Log calls take a fixed event and key=value fields: an f-string would bury the values in text.
LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical"}
LOGGERS = {"log", "logger"}
LOGGING_TREES = ("service", "operator", "tests", "bench")

SERVICE_LAYERS: tuple[tuple[str, ...], ...] = (
    # ffpool.web holds the page's static files only (served by ffpool.server.web).
    ("ffpool", "ffpool.names", "ffpool.logs", "ffpool.web"),
    # The topology's knobs are declared once in topology.py; Settings inherits them.
    ("ffpool.topology",),
    # s3:// locations as pure values: settings and the tenants file validate theirs at load.
    ("ffpool.locations", "ffpool.broker_addresses"),
    ("ffpool.settings",),
    ("ffpool.domain",),
    # The tenants file's model: read by storage (who may read which bucket) and auth alike.
    ("ffpool.auth.tenants",),
    ("ffpool.storage", "ffpool.auth"),
    ("ffpool.ffmpeg",),
    ("ffpool.chunks",),
    ("ffpool.backends",),
    # Webhook deliveries: fed by the backends (through base.py's protocol), their RabbitMQ
    # queue declared with the backend's connection code.
    ("ffpool.webhooks",),
    # Reads queue depth and active jobs from the backend at scrape time.
    ("ffpool.metrics",),
    ("ffpool.server",),
    ("ffpool.app", "ffpool.client"),
    # `ffpool operator ...` runs the operator: the command line is the one entry point above it.
    ("ffpool_operator.main",),
    ("ffpool.cli",),
)
# The Python client talks the WebSocket protocol only: it runs where no server code is installed.
CLIENT_MAY_IMPORT = ("ffpool.client", "ffpool.domain", "ffpool.names", "ffpool")

OPERATOR_LAYERS: tuple[tuple[str, ...], ...] = (
    # What the service shares with the operator: names, the queue topology, one log format.
    # Also the broker address parser the pods use (a spec's addresses are checked with it).
    (
        "ffpool",
        "ffpool.names",
        "ffpool.logs",
        "ffpool.topology",
        "ffpool.broker_addresses",
        "ffpool_operator",
    ),
    ("ffpool_operator.spec",),
    ("ffpool_operator.decisions", "ffpool_operator.manifests"),
    # The HTTP session lifecycle both API clients share.
    ("ffpool_operator.http_session",),
    ("ffpool_operator.kube", "ffpool_operator.broker", "ffpool_operator.metrics"),
    ("ffpool_operator.flows",),
    ("ffpool_operator.main",),
)
PURE_OPERATOR_UNITS = ("ffpool_operator.decisions", "ffpool_operator.manifests")
IO_LIBRARIES = ("aiohttp", "kopf", "kubernetes", "aio_pika", "aiormq")


@dataclass(frozen=True)
class Import:
    importer: str
    target: str
    path: Path
    line: int

    def __str__(self) -> str:
        where = self.path.relative_to(ROOT)
        return f"{where}:{self.line}: {self.importer} imports {self.target}"


def modules(package: str) -> dict[str, Path]:
    """Dotted module name → file, for every module of `package` (a package is its __init__)."""
    root = PACKAGES[package]
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


ALL_MODULES = {name: path for package in PACKAGES for name, path in modules(package).items()}


def _resolve(imported: str) -> str:
    """The module an import names: `pkg.mod.Class` → `pkg.mod`; other libraries stay as named."""
    name = imported
    while name and name not in ALL_MODULES:
        name = name.rpartition(".")[0]
    return name or imported


def _targets(name: str, path: Path, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (_resolve(alias.name) for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        parts = name.split(".")
        if path.name != "__init__.py":
            parts.pop()
        parts = parts[: len(parts) - node.level + 1]
        base = ".".join([*parts, *([node.module] if node.module else [])])
    if base.partition(".")[0] not in PACKAGES:
        yield base
        return
    for alias in node.names:
        yield _resolve(f"{base}.{alias.name}")


def imports(package: str) -> list[Import]:
    """Every import statement of every module of `package`, lazy and TYPE_CHECKING ones too."""
    found: set[Import] = set()
    for name, path in modules(package).items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                found |= {
                    Import(name, target, path, node.lineno) for target in _targets(name, path, node)
                }
    return sorted(found, key=lambda imp: (imp.path, imp.line, imp.target))


def unit_of(module: str, layers: tuple[tuple[str, ...], ...]) -> tuple[str, int] | None:
    """(unit, layer index) of the longest unit that is `module` or a package holding it."""
    best: tuple[str, int] | None = None
    for index, units in enumerate(layers):
        for unit in units:
            # A top-level package stands for its __init__ alone, not for everything under it.
            holds = unit not in PACKAGES and module.startswith(f"{unit}.")
            if (module == unit or holds) and (best is None or len(unit) > len(best[0])):
                best = (unit, index)
    return best


def layer_violations(package: str, layers: tuple[tuple[str, ...], ...]) -> list[str]:
    problems = [
        f"{module} is in no layer of the table"
        for module in modules(package)
        if unit_of(module, layers) is None
    ]
    for imp in imports(package):
        if imp.target.partition(".")[0] not in PACKAGES:
            continue
        source, target = unit_of(imp.importer, layers), unit_of(imp.target, layers)
        if source is None or source[0] == (target or ("",))[0]:
            continue
        if target is None:
            problems.append(f"{imp} (not a layer this package may use)")
        elif target[1] >= source[1]:
            kind = "a peer" if target[1] == source[1] else "upwards"
            problems.append(f"{imp} ({kind}: {source[0]} -> {target[0]})")
    return problems


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the strongly connected components of `graph`."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _fail(what: str, problems: list[str]) -> None:
    if problems:
        pytest.fail(f"{what}:\n" + "\n".join(problems), pytrace=False)


def test_modules_are_short() -> None:
    too_long = [
        f"{path.relative_to(ROOT)}: {lines} lines"
        for path in ALL_MODULES.values()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    _fail(f"modules over {MAX_MODULE_LINES} lines", too_long)


def test_functions_are_short() -> None:
    too_long: list[str] = []
    for path in ALL_MODULES.values():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    too_long.append(f"{where}: {node.name} has {lines} lines")
    _fail(f"functions over {MAX_FUNCTION_LINES} lines", too_long)


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_import_cycles(package: str) -> None:
    graph: dict[str, set[str]] = {name: set() for name in modules(package)}
    for imp in imports(package):
        if imp.target in graph and imp.target != imp.importer:
            graph[imp.importer].add(imp.target)
    cycles = [
        " <-> ".join(component) for component in strongly_connected(graph) if len(component) > 1
    ]
    _fail(f"import cycles in {package}", cycles)


def test_service_imports_only_downwards() -> None:
    _fail("service imports against the layers", layer_violations("ffpool", SERVICE_LAYERS))


def test_client_imports_only_the_protocol() -> None:
    wrong = [
        str(imp)
        for imp in imports("ffpool")
        if imp.importer.startswith("ffpool.client")
        and imp.target.partition(".")[0] in PACKAGES
        and unit_of(imp.target, (CLIENT_MAY_IMPORT,)) is None
    ]
    _fail(f"client imports outside {CLIENT_MAY_IMPORT}", wrong)


def test_operator_imports_only_downwards() -> None:
    _fail(
        "operator imports against the layers", layer_violations("ffpool_operator", OPERATOR_LAYERS)
    )


def test_operator_decisions_and_manifests_do_no_io() -> None:
    wrong = [
        str(imp)
        for imp in imports("ffpool_operator")
        if unit_of(imp.importer, (PURE_OPERATOR_UNITS,)) is not None
        and imp.target.partition(".")[0] in IO_LIBRARIES
    ]
    _fail("I/O libraries imported by the operator's pure core", wrong)


def f_string_log_calls(source: str) -> list[int]:
    """Lines of `log.info(f"...")`-like calls: a `log`/`logger` method given an f-string first."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in LOG_METHODS
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in LOGGERS
        and bool(node.args)
        and isinstance(node.args[0], ast.JoinedStr)
    ]


def test_log_calls_take_no_f_strings() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for tree in LOGGING_TREES
        for path in sorted((ROOT / tree).rglob("*.py"))
        if ".venv" not in path.parts
        for line in f_string_log_calls(path.read_text())
    ]
    _fail("log calls given an f-string (use key=value fields)", found)


def test_the_log_call_check_catches_f_strings() -> None:
    source = 'log.info(f"job {x}")\nlogger.error(f"{y}")\nlog.info("job", x=x)\nprint(f"{x}")\n'
    assert f_string_log_calls(source) == [1, 2]
