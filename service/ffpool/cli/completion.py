"""`ffpool completion bash|zsh|fish`: the shell's completion script (docs/cli.md, "Completion").

The bash and zsh scripts are shtab's, generated from the argument parser: static, so a TAB
runs no Python. shtab has no fish: `fish_script` generates it here from the same parser.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import shtab

SHELLS: Final = ("bash", "zsh", "fish")
PROG: Final = "ffpool"
MAX_DESCRIPTION: Final = 80


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "completion",
        help="print the shell's completion script (bash, zsh, fish)",
        description="Print a completion script; docs/cli.md says where each shell loads it "
        "from, e.g. `ffpool completion bash > ~/.local/share/bash-completion/completions/ffpool`.",
    )
    p.add_argument("shell", choices=SHELLS)
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    """Prints the script of the whole grammar, which `main` hands over as `root_parser`."""
    print(script(args.root_parser, args.shell))
    return 0


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script for `shell`, generated from `parser`."""
    mark_paths(parser)
    if shell == "fish":
        return fish_script(parser)
    return shtab.complete(parser, shell=shell)


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The commands under `parser`, by name (aliases included)."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found |= dict(action.choices)
    return found


def _all_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for child in dict.fromkeys(subparsers(parser).values()):
        yield from _all_parsers(child)


def mark_paths(parser: argparse.ArgumentParser) -> None:
    """Flags that take a local path (`type=Path`) complete file names in shtab's scripts."""
    for each in _all_parsers(parser):
        for action in each._actions:
            if action.type is Path and not hasattr(action, "complete"):
                action.complete = shtab.FILE  # type: ignore[attr-defined]


def _quote(text: str) -> str:
    """A fish single-quoted string."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _description(text: str | None) -> str:
    """A help text's first clause, short enough for a completion menu."""
    line = " ".join((text or "").replace("%%", "%").split())
    line = line.split(" [", 1)[0]  # the generated part of an operation flag's help
    return line if len(line) <= MAX_DESCRIPTION else line[: MAX_DESCRIPTION - 1] + "…"


def _condition(path: tuple[str, ...], children: list[str]) -> str:
    """fish's test that the command line is inside `path` (and, with `children`, before one
    of them is typed)."""
    if not path:
        return "__fish_use_subcommand"
    inside = "; and ".join(f"__fish_seen_subcommand_from {name}" for name in path)
    if children:
        inside += f"; and not __fish_seen_subcommand_from {' '.join(children)}"
    return inside


def _option_line(action: argparse.Action, condition: str) -> str:
    parts = [f"complete -c {PROG} -n {_quote(condition)}"]
    for option in action.option_strings:
        if option.startswith("--"):
            parts.append(f"-l {option[2:]}")
        else:
            parts.append(f"-s {option[1:]}")
    if action.choices is not None:
        parts.append("-x -a " + _quote(" ".join(str(c) for c in action.choices)))
    elif action.type is Path:
        parts.append("-r -F")
    elif action.nargs != 0:
        parts.append("-x")
    if action.help and action.help != argparse.SUPPRESS:
        parts.append("-d " + _quote(_description(action.help)))
    return " ".join(parts)


def _lines(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> Iterator[str]:
    children = subparsers(parser)
    helps = {
        choice.dest: choice.help
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for choice in action._choices_actions
    }
    condition = _condition(path, list(children))
    for name in children:
        described = f" -d {_quote(_description(helps[name]))}" if helps.get(name) else ""
        yield f"complete -c {PROG} -n {_quote(condition)} -a {name}{described}"
    inside = _condition(path, [])
    for action in parser._actions:
        if action.option_strings:
            yield _option_line(action, inside)
        elif action.choices is not None and not isinstance(action, argparse._SubParsersAction):
            choices = " ".join(str(c) for c in action.choices)
            yield f"complete -c {PROG} -n {_quote(inside)} -a {_quote(choices)}"
    for name, child in children.items():
        yield from _lines(child, (*path, name))


def fish_script(parser: argparse.ArgumentParser) -> str:
    """`complete` commands for fish: each command, its flags (with their choices and help)
    and its positional choices; file names only where a flag takes a path."""
    header = [
        f"# fish completion for {PROG}: `{PROG} completion fish > "
        f"~/.config/fish/completions/{PROG}.fish`",
        f"complete -c {PROG} -f",
    ]
    return "\n".join([*header, *_lines(parser, ())]) + "\n"
