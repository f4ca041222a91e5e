"""Every source path and module the docs name exists, so the docs cannot drift from the code.

Read: README.md and docs/**/*.md, and the comments and docstrings of the Python files under
service/, operator/, tests/ and bench/. Checked:
- Python file paths: rooted ones (`service/ffpool/server/ws.py`, `ffpool/names.py`,
  `ffpool_operator/kube/client.py`, `tests/unit/...py`, `bench/...py`) must exist exactly there;
  a package-relative one (`server/ws.py`) or a bare file name (`drift.py`) must match a file of
  the project's source trees;
- any path under the packages (`service/ffpool/storage/`, `service/ffpool/schema/protocol.json`);
- dotted names (`ffpool.domain.bounds.MAX_STREAMS`, `ffpool_operator.spec.crd`): the modules
  must exist, and the first name after them must be defined at the module's top level.
"""

from __future__ import annotations

import ast
import functools
import io
import re
import tokenize
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# Where a path that starts with one of these names lives.
ROOTED = {
    "service/": ROOT / "service",
    "operator/": ROOT / "operator",
    "ffpool/": ROOT / "service" / "ffpool",
    "ffpool_operator/": ROOT / "operator" / "ffpool_operator",
    "tests/": ROOT / "tests",
    "bench/": ROOT / "bench",
    "scripts/": ROOT / "scripts",
    "cluster/": ROOT / "cluster",
}
# Where a package-relative path or a bare file name may be found.
SOURCE_TREES = ("service", "operator", "tests", "bench", "scripts", "cluster")
# Whose comments and docstrings are read too.
PROSE_TREES = ("service", "operator", "tests", "bench")
PACKAGES = {
    "ffpool": ROOT / "service" / "ffpool",
    "ffpool_operator": ROOT / "operator" / "ffpool_operator",
}
# `ffpool.<word>` that is no module: the API group, hosts, files, WebSocket subprotocols.
NOT_MODULES = {"dev", "example", "tar", "ticket", "v1"}

URL = re.compile(r"[a-z]+://\S+")
PY_FILE = re.compile(r"(?<![\w/.-])((?:\.\.?/)*(?:[\w.-]+/)*[\w.-]*\w\.py)\b")
PACKAGE_PATH = re.compile(
    r"(?<![\w/.-])((?:service/ffpool|operator/ffpool_operator)(?:/[\w.-]+)*/?)"
)
DOTTED = re.compile(r"(?<![\w/.-])(ffpool(?:_operator)?(?:\.\w+)+)")


class Mention(NamedTuple):
    where: str
    text: str
    problem: str


def _lines(doc: Path) -> list[tuple[str, str]]:
    rel = doc.relative_to(ROOT)
    return [
        (f"{rel}:{n}", URL.sub("", line)) for n, line in enumerate(doc.read_text().splitlines(), 1)
    ]


@functools.cache
def _source_files() -> tuple[str, ...]:
    files = []
    for tree in SOURCE_TREES:
        for path in (ROOT / tree).rglob("*.py"):
            if ".venv" not in path.parts and "__pycache__" not in path.parts:
                files.append(path.relative_to(ROOT).as_posix())
    return tuple(files)


def _py_file_problem(doc: Path, text: str) -> str | None:
    if text.startswith(("./", "../")):
        return None if (doc.parent / text).is_file() else "no such file (relative to the doc)"
    for prefix, base in ROOTED.items():
        if text.startswith(prefix):
            return None if (base / text.removeprefix(prefix)).is_file() else "no such file"
    if "/" in text:
        hit = any(f.endswith("/" + text) for f in _source_files())
        return None if hit else "no source file ends with this path"
    hit = any(f.rsplit("/", 1)[-1] == text for f in _source_files())
    return None if hit else "no source file has this name"


def _top_level_names(module: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(module.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _dotted_problem(text: str) -> str | None:
    top, *parts = text.split(".")
    if parts[0] in NOT_MODULES:
        return None
    here = PACKAGES[top]
    module: Path | None = None
    rest = parts
    while rest:
        if (here / rest[0] / "__init__.py").is_file():
            here, module, rest = here / rest[0], here / rest[0] / "__init__.py", rest[1:]
        elif (here / f"{rest[0]}.py").is_file():
            module, rest = here / f"{rest[0]}.py", rest[1:]
            break
        else:
            break
    if module is None:
        return f"no module {top}.{parts[0]}"
    if rest and rest[0] not in _top_level_names(module):
        return f"{module.relative_to(ROOT)} defines no {rest[0]}"
    return None


def _prose(text: str) -> list[tuple[int, str]]:
    """The comments and docstrings of Python source, line by line (numbered from 1)."""
    lines = [
        (tok.start[0], tok.string)
        for tok in tokenize.generate_tokens(io.StringIO(text).readline)
        if tok.type == tokenize.COMMENT
    ]
    # Docstrings: of modules, classes and functions, and those under attributes and fields.
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            doc = node.value.value
            if isinstance(doc, str):
                lines += [(node.lineno + i, line) for i, line in enumerate(doc.splitlines())]
    return sorted(lines)


def _problems(doc: Path, where: str, line: str) -> list[Mention]:
    found = []
    for m in PY_FILE.finditer(line):
        if problem := _py_file_problem(doc, m.group(1)):
            found.append(Mention(where, m.group(1), problem))
    for m in PACKAGE_PATH.finditer(line):
        path = m.group(1).rstrip(".")
        if not (ROOT / path).exists():
            found.append(Mention(where, path, "no such file or folder"))
    for m in DOTTED.finditer(line):
        if problem := _dotted_problem(m.group(1)):
            found.append(Mention(where, m.group(1), problem))
    return found


def _mentions() -> list[Mention]:
    return [m for doc in DOCS for where, line in _lines(doc) for m in _problems(doc, where, line)]


def _source_mentions() -> list[Mention]:
    return [
        m
        for file in _source_files()
        if file.startswith(tuple(f"{tree}/" for tree in PROSE_TREES))
        for n, line in _prose((ROOT / file).read_text())
        for m in _problems(ROOT / file, f"{file}:{n}", URL.sub("", line))
    ]


def test_docs_name_only_paths_and_modules_that_exist() -> None:
    stale = _mentions()
    assert not stale, "docs name what does not exist:\n" + "\n".join(
        f"  {m.where}: {m.text} ({m.problem})" for m in stale
    )


def test_comments_and_docstrings_name_only_paths_and_modules_that_exist() -> None:
    stale = _source_mentions()
    assert not stale, "comments and docstrings name what does not exist:\n" + "\n".join(
        f"  {m.where}: {m.text} ({m.problem})" for m in stale
    )


def test_checker_catches_stale_names() -> None:
    """The checks themselves: a renamed module must be caught, a real one must pass."""
    readme = ROOT / "README.md"
    assert _py_file_problem(readme, "service/ffpool/jobs/runner.py")
    assert _py_file_problem(readme, "ffpool_operator/reconcile.py")
    assert _py_file_problem(readme, "rabbitmq/consumer.py")
    assert _py_file_problem(readme, "builders.py")
    assert _py_file_problem(readme, "service/ffpool/server/ws.py") is None
    assert _py_file_problem(readme, "ffpool/names.py") is None
    assert _py_file_problem(readme, "kube/client.py") is None
    assert _dotted_problem("ffpool.jobs.models")
    assert _dotted_problem("ffpool.domain.bounds.NO_SUCH_NAME")
    assert _dotted_problem("ffpool.domain.bounds.MAX_STREAMS") is None
    assert _dotted_problem("ffpool.dev") is None
    source = (
        '"""Doc (ffpool/nope.py)."""\nX = 1\n"""Field doc."""\n# see ffpool.no_module\ny = "a.py"\n'
    )
    assert _prose(source) == [
        (1, "Doc (ffpool/nope.py)."),
        (3, "Field doc."),
        (4, "# see ffpool.no_module"),
    ]
