"""`ffpool completion bash|zsh|fish`: each script loads in the real shell, and bash and fish
complete commands, flags and flag values from it (zsh: the script parses, `zsh -n`)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from ffpool.cli import build_parser, main
from ffpool.cli.completion import script
from tests.polling import poll_until

# Completes the words given (the last one is being typed) with the function the script
# registered for `ffpool` (`complete -p ffpool` names it), one candidate a line.
BASH_DRIVER = r"""
source "$1"; shift
func=$(complete -p ffpool | sed -n 's/.*-F \([^ ]*\).*/\1/p')
COMP_WORDS=("$@")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
COMPREPLY=()
"$func" ffpool "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"""


def shell(name: str) -> str:
    """The shell's path; fails under CI (scripts/setup.sh installs it), else skips."""
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed (scripts/setup.sh installs it)")
        pytest.skip(f"{name} is not installed")
    return found


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("completion")
    found = {}
    for name in ("bash", "zsh", "fish"):
        found[name] = folder / f"ffpool.{name}"
        found[name].write_text(script(build_parser(), name))
    return found


def bash_complete(scripts: dict[str, Path], *words: str) -> list[str]:
    done = subprocess.run(
        [shell("bash"), "--norc", "-c", BASH_DRIVER, "driver", str(scripts["bash"]), *words],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert done.stderr == ""
    return done.stdout.split()


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["ffpool", "sta"], ["status"]),
        (["ffpool", "completion", ""], ["bash", "zsh", "fish"]),
        (["ffpool", "submit", "--preset", "very"], ["veryfast", "veryslow"]),
        (["ffpool", "submit", "tr"], ["transcode", "trim"]),
        (["ffpool", "token", "c"], ["create"]),
    ],
)
def test_bash_completes_commands_and_values(
    scripts: dict[str, Path], words: list[str], expected: list[str]
) -> None:
    assert sorted(bash_complete(scripts, *words)) == sorted(expected)


def test_bash_completes_the_generated_operation_flags(scripts: dict[str, Path]) -> None:
    assert "--height" in bash_complete(scripts, "ffpool", "submit", "--he")
    assert "--chunk-seconds" in bash_complete(scripts, "ffpool", "submit", "--chunk-s")


def test_bash_completes_file_names_for_a_path_flag(
    scripts: dict[str, Path], tmp_path: Path
) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"")
    found = bash_complete(scripts, "ffpool", "submit", "--file", str(tmp_path / "cl"))
    assert found == [str(tmp_path / "clip.mp4")]


def test_zsh_script_parses(scripts: dict[str, Path]) -> None:
    done = subprocess.run(
        [shell("zsh"), "-n", str(scripts["zsh"])], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert "#compdef ffpool" in scripts["zsh"].read_text()


def test_zsh_completes_in_a_real_terminal(scripts: dict[str, Path], tmp_path: Path) -> None:
    """zsh's completion runs only in an interactive shell's line editor: a real one, in tmux,
    typing TAB as a user does."""
    zsh, tmux = shell("zsh"), shell("tmux")
    (tmp_path / "functions").mkdir()
    (tmp_path / "functions" / "_ffpool").write_text(scripts["zsh"].read_text())
    socket_name = f"ffpool-completion-{os.getpid()}"

    def run(*argv: str) -> str:
        return subprocess.run(
            [tmux, "-L", socket_name, *argv], capture_output=True, text=True, timeout=30
        ).stdout

    env = f"env -i HOME={tmp_path} TERM=xterm PATH=/usr/bin:/bin {zsh} -f"
    run("new-session", "-d", "-s", "z", "-x", "150", "-y", "20", env)
    try:
        setup = f"fpath=({tmp_path}/functions $fpath); autoload -U compinit; compinit -u"
        run("send-keys", "-t", "z", setup, "Enter")
        for typed, shown in (
            ("ffpool sta", "ffpool status"),
            ("ffpool submit --heig", "ffpool submit --height"),
            ("ffpool submit --preset very", "veryfast  veryslow"),
        ):
            run("send-keys", "-t", "z", "C-u", typed, "Tab")
            screen = functools.partial(run, "capture-pane", "-p", "-t", "z")
            shows = functools.partial(_contains, shown, screen)
            poll_until(shows, timeout=15, what=f"zsh completing {typed!r}")
    finally:
        run("kill-server")


def _contains(text: str, screen: Callable[[], str]) -> bool:
    return text in screen()


def fish_complete(scripts: dict[str, Path], line: str) -> list[str]:
    done = subprocess.run(
        [shell("fish"), "--no-config", "-c", f"source {scripts['fish']}; complete -C '{line}'"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return [candidate.split("\t")[0] for candidate in done.stdout.splitlines()]


def test_fish_script_parses_and_completes(scripts: dict[str, Path]) -> None:
    done = subprocess.run(
        [shell("fish"), "--no-execute", str(scripts["fish"])],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert fish_complete(scripts, "ffpool sta") == ["status"]
    assert "--height" in fish_complete(scripts, "ffpool submit --he")
    assert sorted(fish_complete(scripts, "ffpool submit --preset very")) == [
        "veryfast",
        "veryslow",
    ]
    assert fish_complete(scripts, "ffpool token cr") == ["create"]


def test_the_command_prints_the_script(capsys: pytest.CaptureFixture[str]) -> None:
    for name, marker in (
        ("bash", "complete -o"),
        ("zsh", "#compdef ffpool"),
        ("fish", "-c ffpool"),
    ):
        with pytest.raises(SystemExit) as exited:
            main(["completion", name])
        assert exited.value.code == 0
        assert marker in capsys.readouterr().out
