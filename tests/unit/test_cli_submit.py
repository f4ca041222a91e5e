"""`ffpool submit`'s object storage and webhook flags, and the client's submit overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ffpool.cli import build_parser
from ffpool.client.session import Client
from ffpool.domain.jobs import JobSpec, PathInput, ProbeOp
from ffpool.domain.protocol import Accepted, Submit


def parse(*argv: str) -> Any:
    return build_parser().parse_args(["submit", "thumbnail", *argv])


def test_s3_input_output_and_callback() -> None:
    args = parse(
        "--s3",
        "s3://media-in/a.mp4",
        "--output",
        "s3://media-out/acme/",
        "--callback",
        "https://hooks.example.com/ffpool",
    )
    assert args.s3 == "s3://media-in/a.mp4"
    assert args.output == "s3://media-out/acme/"
    assert args.callback == "https://hooks.example.com/ffpool"
    assert args.output_dir == Path(".")
    assert args.download is False


def test_output_dir_is_the_directory_and_o_the_exact_file() -> None:
    args = parse("--path", "a.mp4", "--output-dir", "out", "--output", "s3://b-1/x", "--download")
    assert args.output_dir == Path("out")
    assert args.out is None
    assert args.output == "s3://b-1/x"
    assert args.download is True
    exact = parse("--path", "a.mp4", "-o", "thumb.jpg")
    assert (exact.out, exact.output_dir) == ("thumb.jpg", Path("."))
    assert parse("--path", "a.mp4", "--out", "x/t.jpg").out == "x/t.jpg"


def test_detach_and_no_wait() -> None:
    assert parse("--path", "a.mp4").detach is False
    assert parse("--path", "a.mp4", "--detach").detach is True
    assert parse("--path", "a.mp4", "--no-wait").detach is True


def test_output_takes_only_a_bucket_location(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--path", "a.mp4", "--output", "./results")
    assert "a local directory is --output-dir" in capsys.readouterr().err


@pytest.mark.parametrize("other", ["--file", "--path", "--url"])
def test_s3_is_one_of_the_inputs(other: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--s3", "s3://media-in/a.mp4", other, "x")
    assert "not allowed with argument" in capsys.readouterr().err


async def test_client_submit_overrides_output_and_callback() -> None:
    sent: list[Submit] = []

    class Recorder(Client):
        async def _request(self, msg: Any, request_id: str) -> Any:
            sent.append(msg)
            return Accepted(job_id="a" * 32, request_id=request_id)

    client = Recorder("ws://127.0.0.1:1/ws")
    spec = JobSpec(input=PathInput(path="a.mp4"), operation=ProbeOp())
    await client.submit(spec, output="s3://media-out/x", callback="https://hooks.example.com/")
    await client.submit(spec)
    assert sent[0].job.output == "s3://media-out/x"
    assert str(sent[0].job.callback) == "https://hooks.example.com/"
    assert sent[1].job == spec
