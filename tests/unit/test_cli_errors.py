"""cli/errors.py without I/O: validation errors, server refusals, local files and the unknown
rendered as one line in words with their documented exit code. The network's failures, built
for real on loopback, are in tests/integration/test_cli_errors_net.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response

from ffpool.cli import build_parser, operation_from
from ffpool.cli.config import ConfigError
from ffpool.cli.errors import ExitCode, address, describe
from ffpool.cli.untrusted import UnsafeName
from ffpool.client.endpoints import NotAnFfpoolServer
from ffpool.client.outcomes import ClientError
from ffpool.domain.jobs import JobSpec, Operation
from ffpool.domain.protocol import Error, ErrorCode, ProtocolError, parse_client_message

PYDANTIC_WORDS = ("tagged-union", "function-after", "Input should", "Value error", "[type=")


def invalid(operation: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        TypeAdapter(Operation).validate_python(operation)
    return caught.value


def submitted(*argv: str) -> ValidationError:
    """The ValidationError of the operation `ffpool submit ARGV --path a.mp4` describes."""
    args = build_parser().parse_args(["submit", *argv, "--path", "a.mp4"])
    return invalid(operation_from(args))


def line_of(exc: BaseException) -> str:
    line, code = describe(exc)
    assert code is ExitCode.USAGE, line
    assert "\n" not in line
    assert not any(word in line for word in PYDANTIC_WORDS), line
    return line


def test_exit_codes_keep_their_values() -> None:
    """docs/cli.md documents them: scripts depend on the numbers."""
    assert {c.name: c.value for c in ExitCode} == {
        "OK": 0,
        "JOB_FAILED": 1,
        "USAGE": 2,
        "UNREACHABLE": 3,
        "AUTH": 4,
        "NOT_FOUND": 5,
        "BUSY": 6,
        "UNEXPECTED": 70,
        "INTERRUPTED": 130,
    }


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["transcode", "--crf", "99"], "invalid --crf: 99 (must be at most 63)"),
        (["transcode", "--crf", "55"], "invalid --crf: 55 (--crf for h264/h265 is 0..51)"),
        (["transcode", "--height", "8"], "invalid --height: 8 (must be at least 16)"),
        (
            ["thumbnail", "--format", "mp3"],
            "invalid --format: 'mp3' (must be one of jpg, png, webp)",
        ),
        (["trim"], "missing --duration (trim needs it)"),
        (["trim", "--duration", "0"], "invalid --duration: 0 (must be at least 0.1)"),
        (
            ["transcode", "--chunk-seconds", "1"],
            "invalid --chunk-seconds: 1 (must be at least 2)",
        ),
        (
            ["ladder", "--renditions", "720:2800,10:abc"],
            "invalid renditions[1].height: 10 (must be at least 16); "
            "invalid renditions[1].video_bitrate: 'abc' (must be a whole number)",
        ),
        (
            ["ladder", "--formats", "hls,mpd"],
            "invalid formats[1]: 'mpd' (must be one of hls, dash)",
        ),
        (
            ["ladder", "--audio-bitrates", "128,96,64,32"],
            "invalid --audio-bitrates: 128,96,64,32 (takes at most 3 item(s))",
        ),
        (
            ["ladder", "--formats", "dash", "--hls-segment-type", "ts"],
            "invalid --hls-segment-type: 'ts' (DASH needs fmp4 segments: "
            "--hls-segment-type ts is HLS only)",
        ),
        (
            ["transcode", "--crf", "20", "--video-bitrate", "800"],
            "invalid --crf: 20 (give --crf or --video-bitrate, not both)",
        ),
        (
            ["transcode", "--container", "webm"],
            "invalid transcode operation: webm cannot carry h264 video",
        ),
    ],
)
def test_validation_errors_name_the_flag_the_value_and_what_is_allowed(
    argv: list[str], expected: str
) -> None:
    assert line_of(submitted(*argv)) == expected


def test_an_unknown_operation_lists_the_operations() -> None:
    line = line_of(invalid({"op": "rotate"}))
    assert line == (
        "invalid operation 'rotate': must be one of "
        "probe, thumbnail, transcode, extract_audio, trim, ladder"
    )


def test_the_job_s_other_fields_are_named_by_their_flags() -> None:
    with pytest.raises(ValidationError) as caught:
        JobSpec.model_validate(
            {
                "input": {"kind": "path", "path": "/etc/passwd"},
                "operation": {"op": "transcode", "crf": 99},
                "callback": "ftp://hooks.example.com/",
            }
        )
    line = line_of(caught.value)
    assert "invalid --path: '/etc/passwd' (must match " in line
    assert "invalid --crf: 99 (must be at most 63)" in line
    assert "invalid --callback: 'ftp://hooks.example.com/' (URL scheme should be" in line


def test_many_errors_stay_one_line() -> None:
    line = line_of(invalid({"op": "ladder", "audio_bitrates_kbps": [1, 2, 3, 4, 5, 6]}))
    assert line.endswith("and 2 more")
    assert line.count("invalid audio-bitrates[") == 4


def test_an_answer_the_client_cannot_read_is_not_the_user_s_fault() -> None:
    from ffpool.domain.events import JobRecord

    with pytest.raises(ValidationError) as caught:
        JobRecord.model_validate({"hello": "world"})
    line, code = describe(caught.value, "https://ffpool.example.com")
    assert code is ExitCode.UNREACHABLE
    assert line.startswith("cannot read the answer of ffpool.example.com:443 (JobRecord")


def refusal(code: ErrorCode, message: str = "no", job_id: str | None = None) -> ClientError:
    return ClientError(Error(code=code, message=message, job_id=job_id))


EXPECTED_EXIT = {
    ErrorCode.UNKNOWN_JOB: ExitCode.NOT_FOUND,
    ErrorCode.UNAUTHORIZED: ExitCode.AUTH,
    ErrorCode.QUEUE_FULL: ExitCode.BUSY,
    ErrorCode.TOO_MANY_JOBS: ExitCode.BUSY,
    ErrorCode.RATE_LIMITED: ExitCode.BUSY,
    ErrorCode.QUOTA_EXCEEDED: ExitCode.BUSY,
    ErrorCode.BUSY: ExitCode.BUSY,
    ErrorCode.BACKEND_UNAVAILABLE: ExitCode.BUSY,
    ErrorCode.INTERNAL_ERROR: ExitCode.BUSY,
    ErrorCode.INVALID_JSON: ExitCode.USAGE,
    ErrorCode.MESSAGE_TOO_LARGE: ExitCode.USAGE,
    ErrorCode.UNKNOWN_TYPE: ExitCode.USAGE,
    ErrorCode.INVALID_MESSAGE: ExitCode.USAGE,
    ErrorCode.INVALID_JOB: ExitCode.USAGE,
    ErrorCode.NOT_CANCELLABLE: ExitCode.USAGE,
}


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_refusal_code_has_its_exit_code(code: ErrorCode) -> None:
    line, exit_code = describe(refusal(code, "the server's words"))
    assert exit_code is EXPECTED_EXIT[code]
    assert "the server's words" in line
    assert "\n" not in line


def test_unknown_job_and_auth_say_what_to_do() -> None:
    line, _ = describe(refusal(ErrorCode.UNKNOWN_JOB, "unknown job", "ab" * 16))
    assert line.startswith(f"no such job {'ab' * 16}: unknown job (unknown_job")
    line, _ = describe(refusal(ErrorCode.UNAUTHORIZED, "authentication required"))
    assert line.startswith("not authorized (authentication required); pass an API token")
    for way in ("--token", "$FFPOOL_TOKEN", "the config file"):
        assert way in line
    line, _ = describe(refusal(ErrorCode.QUEUE_FULL, "queue is full (100 jobs)"))
    assert line == "the job queue is full (queue_full: queue is full (100 jobs)); try later"


def test_the_server_s_validation_refusal_in_the_same_words() -> None:
    """The server's real `invalid_job` message (domain/protocol.py), as the client gets it."""
    frame = {
        "type": "submit",
        "job": {
            "input": {"kind": "path", "path": "a.mp4"},
            "operation": {"op": "ladder", "renditions": [{"height": 720}]},
        },
    }
    with pytest.raises(ProtocolError) as caught:
        parse_client_message(json.dumps(frame), 65536)
    line, code = describe(ClientError(caught.value.reply))
    assert code is ExitCode.USAGE
    assert line == "the server refused it (invalid_job): missing renditions[0].video_bitrate"
    frame["job"]["operation"] = {"op": "transcode", "crf": 99}  # type: ignore[index]
    with pytest.raises(ProtocolError) as caught:
        parse_client_message(json.dumps(frame), 65536)
    line, _ = describe(ClientError(caught.value.reply))
    assert line == "the server refused it (invalid_job): invalid --crf: must be at most 63"


def test_other_server_text_passes_through_trimmed() -> None:
    line, _ = describe(refusal(ErrorCode.INVALID_JOB, "bucket media-in is not yours " * 30))
    assert line.startswith("the server refused it (invalid_job): bucket media-in is not yours")
    assert len(line) < 400


def test_a_local_file_that_cannot_be_read(tmp_path: Path) -> None:
    missing = tmp_path / "clip.mp4"
    with pytest.raises(FileNotFoundError) as caught:
        missing.open("rb")
    assert describe(caught.value) == (f"{missing}: no such file or directory", ExitCode.USAGE)
    denied = PermissionError(13, "Permission denied", "/srv/out")
    assert describe(denied) == ("/srv/out: permission denied", ExitCode.USAGE)
    taken = FileExistsError("out.jpg and 999 numbered names exist")
    assert describe(taken) == ("out.jpg and 999 numbered names exist", ExitCode.USAGE)


def test_flags_an_operation_does_not_take_are_a_usage_error() -> None:
    args = build_parser().parse_args(["submit", "probe", "--path", "a.mp4", "--crf", "20"])
    with pytest.raises(ValueError, match="probe does not take --crf") as caught:
        operation_from(args)
    assert describe(caught.value) == (
        "probe does not take --crf; probe takes no operation flags",
        ExitCode.USAGE,
    )


def test_anything_else_is_unexpected_and_points_at_debug() -> None:
    line, code = describe(RuntimeError("the flux capacitor\nbroke"))
    assert line == (
        "unexpected error: RuntimeError: the flux capacitor broke (run with --debug for details)"
    )
    assert code is ExitCode.UNEXPECTED


def test_an_exception_group_is_described_by_its_first_exception() -> None:
    group = ExceptionGroup("tasks", [refusal(ErrorCode.UNKNOWN_JOB), RuntimeError("x")])
    assert describe(group)[1] is ExitCode.NOT_FOUND


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("http://127.0.0.1:8081", "127.0.0.1:8081"),
        ("https://ffpool.example.com/prefix", "ffpool.example.com:443"),
        ("ws://[::1]:8080/ws", "[::1]:8080"),
        ("ffpool.internal", "ffpool.internal:80"),
        (None, "the server"),
    ],
)
def test_the_address_a_line_names(server: str | None, expected: str) -> None:
    assert address(server) == expected


def test_the_server_s_words_reach_the_terminal_without_control_characters() -> None:
    hostile = "boom\x1b]0;owned\x07\x1b[2J\x9b31m\u202egnp.exe\r\nnext"
    line, code = describe(refusal(ErrorCode.INVALID_JOB, hostile))
    assert code is ExitCode.USAGE
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in line)
    assert "\u202e" not in line
    assert "\\x1b]0;owned\\x07" in line  # shown, not obeyed


@pytest.mark.parametrize(
    "exc",
    [
        ConfigError("bad server URL 'http://user:s3cret@host:1/x'"),
        NotAnFfpoolServer("http://user:s3cret@host:1 is not an ffpool server"),
        RuntimeError("GET https://h/jobs?token=s3cret&sig=s3cret&limit=1 failed"),
    ],
)
def test_passwords_and_tokens_in_urls_are_never_printed(exc: Exception) -> None:
    line, _ = describe(exc, "http://user:s3cret@host:1")
    assert "s3cret" not in line
    assert "***" in line


def test_an_unsafe_name_from_the_server_is_its_fault_not_a_bug() -> None:
    line, code = describe(UnsafeName("operation", "x/../../escaped"))
    assert code is ExitCode.UNREACHABLE
    assert line.startswith("the server sent an unsafe output name: operation 'x/../../escaped'")


class _Socket:
    """Stands in for the client whose WebSocket handshake was refused: it has a `ws_url`."""

    def __init__(self, ws_url: str) -> None:
        self.ws_url = ws_url

    def open(self, status: int) -> None:
        raise InvalidStatus(Response(status, "no", Headers()))


@pytest.mark.parametrize("status", [401, 404])
def test_a_refused_handshake_names_the_websocket_url_tried(status: int) -> None:
    with pytest.raises(InvalidStatus) as caught:
        _Socket("ws://user:pw@127.0.0.1:19501/ws").open(status)
    line, _ = describe(caught.value, "http://127.0.0.1:19500")
    assert line.startswith("ws://user:***@127.0.0.1:19501/ws ")
    assert "19500" not in line
