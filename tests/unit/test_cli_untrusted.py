"""Outside text and names made safe (cli/untrusted.py): what a server says is printed without
its control characters, URLs without their secrets, and a JOB argument is a job id."""

from __future__ import annotations

import argparse

import pytest

from ffpool.cli import build_parser
from ffpool.cli.untrusted import job_id_arg, printable, redact, shown


def test_control_characters_are_shown_not_obeyed() -> None:
    assert printable("a\x1b[31mred\x07\x00\x7f\x9b\u202eb") == (
        "a\\x1b[31mred\\x07\\x00\\x7f\\x9b\\u202eb"
    )
    assert printable("one\ttwo\nthree") == "one\\x09two\\x0athree"
    assert printable("one\ttwo\nthree\r", lines=True) == "one\ttwo\nthree\\x0d"
    assert printable("plain text, ünïcode…") == "plain text, ünïcode…"


def test_shown_is_printable_and_escaped_for_rich() -> None:
    assert shown("[red]x\x1b") == "\\[red]x\\x1b"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://user:s3cret@host:8080/x", "http://user:***@host:8080/x"),
        ("wss://:s3cret@host/ws", "wss://:***@host/ws"),
        ("http://host:8080/x?token=s3cret&a=1", "http://host:8080/x?token=***&a=1"),
        ("https://b.s3/o?X=1&sig=abc#f", "https://b.s3/o?X=1&sig=***#f"),
        ("http://user@host:8080/x", "http://user@host:8080/x"),
        ("cannot resolve host:80", "cannot resolve host:80"),
    ],
)
def test_urls_lose_their_secrets(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_a_job_id_is_32_hex_digits_in_any_case() -> None:
    assert job_id_arg("9F0C" + "a" * 28) == "9f0c" + "a" * 28
    for bad in ("abc", "..", "", "g" * 32, "a" * 33, "a" * 31 + "/"):
        with pytest.raises(argparse.ArgumentTypeError, match="not a job id"):
            job_id_arg(bad)


@pytest.mark.parametrize("command", ["status", "download", "watch", "cancel"])
def test_every_command_taking_a_job_refuses_a_bad_one_as_usage(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args([command, ".."])
    assert caught.value.code == 2
    assert "not a job id: '..' (32 hex digits, as `ffpool jobs` shows)" in capsys.readouterr().err
    args = build_parser().parse_args([command, "AB" * 16])
    assert args.job_id == "ab" * 16
