"""`ffpool submit`'s operation flags, generated from the operation models: every field has a
flag with help (so a new field cannot be forgotten), the flags users already type still parse,
and a flag the operation does not take is a usage error naming the operation's own."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from pydantic import TypeAdapter

from ffpool.cli import build_parser, main, operation_from
from ffpool.cli.op_flags import (
    DESCRIPTIONS,
    FLAGS,
    OPERATION_MODELS,
    FlagError,
    flag_name,
    help_text,
    meaning,
    model_fields,
)
from ffpool.domain.jobs import Operation


def submit_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser: argparse.ArgumentParser = sub.choices["submit"]
    return parser


def parsed(*argv: str) -> Any:
    return build_parser().parse_args(["submit", *argv, "--path", "a.mp4"])


@pytest.mark.parametrize("op", sorted(OPERATION_MODELS))
def test_every_field_of_every_operation_has_a_flag_with_help(op: str) -> None:
    options = submit_parser()._option_string_actions
    for path, _ in model_fields(OPERATION_MODELS[op]):
        flag = FLAGS[flag_name(path)]
        assert flag.use_for(op) is not None, path
        assert meaning(flag), f"describe {'.'.join(path)}: a Field description or op_flags.py"
        action = options[flag.option]
        assert action.help, flag.option
        assert op in action.help
        assert "default" in action.help or "required" in action.help


def test_no_flag_is_left_without_an_operation_or_a_description() -> None:
    described = {".".join(flag.path) for flag in FLAGS.values()}
    assert set(DESCRIPTIONS) <= described, "words for a field no operation has"
    assert all(flag.uses for flag in FLAGS.values())


@pytest.mark.parametrize(
    ("option", "words"),
    [
        ("--format", ["thumbnail: jpg|png|webp; default jpg", "extract_audio: mp3|aac|opus"]),
        ("--crf", ["transcode: 0..63; default unset", "h264/h265: at most 51"]),
        ("--height", ["thumbnail, transcode: 16..4320 pixels; default unset"]),
        ("--video-bitrate", ["transcode: 8..100000 kbit/s; default unset"]),
        ("--audio-bitrate", ["transcode: 8..512 kbit/s; default 128"]),
        ("--duration", ["trim: 0.1..604800 seconds; required"]),
        ("--chunk-seconds", ["transcode, ladder: 2..3600 seconds; default 30"]),
        ("--renditions", ["height 16..4320 pixels", "profile baseline|main|high (optional)"]),
        ("--audio-bitrates", ["each 8..512 kbit/s; at most 3 items; default 128"]),
        ("--formats", ["each hls|dash; 1 to 2 items; default hls"]),
    ],
)
def test_help_lists_operations_allowed_values_units_and_defaults(
    option: str, words: list[str]
) -> None:
    text = help_text(next(f for f in FLAGS.values() if f.option == option))
    for word in words:
        assert word in text, text


# Every flag of the hand-kept table this replaced, as users typed them.
EXISTING = [
    (
        ["thumbnail", "--time", "3.5", "--width", "320", "--height", "240", "--format", "png"],
        {"time": 3.5, "width": 320, "height": 240, "format": "png"},
    ),
    (
        [
            *("transcode", "--container", "mkv", "--video-codec", "h265", "--audio-codec", "opus"),
            *("--crf", "28", "--audio-bitrate", "96", "--fps", "25", "--preset", "fast"),
            *("--height", "360"),
        ],
        {
            "container": "mkv",
            "video_codec": "h265",
            "audio_codec": "opus",
            "crf": 28,
            "audio_bitrate_kbps": 96,
            "fps": 25.0,
            "preset": "fast",
            "height": 360,
        },
    ),
    (
        ["transcode", "--video-bitrate", "800", "--chunk-seconds", "10", "--chunk-mode", "auto"],
        {"video_bitrate_kbps": 800, "chunking": {"chunk_seconds": 10.0, "mode": "auto"}},
    ),
    (
        ["extract_audio", "--format", "opus", "--bitrate", "96"],
        {"format": "opus", "bitrate_kbps": 96},
    ),
    (
        ["trim", "--start", "1", "--duration", "2.5", "--mode", "reencode"],
        {"start": 1.0, "duration": 2.5, "mode": "reencode"},
    ),
    (
        [
            *("ladder", "--renditions", "720:2800,360:800:baseline", "--audio-bitrates", "128,64"),
            *("--formats", "hls,dash", "--segment-seconds", "6", "--hls-segment-type", "fmp4"),
            *("--preset", "veryfast", "--chunk-seconds", "20"),
        ],
        {
            "renditions": [
                {"height": 720, "video_bitrate_kbps": 2800},
                {"height": 360, "video_bitrate_kbps": 800, "profile": "baseline"},
            ],
            "audio_bitrates_kbps": [128, 64],
            "formats": ["hls", "dash"],
            "segment_seconds": 6.0,
            "hls_segment_type": "fmp4",
            "preset": "veryfast",
            "chunking": {"chunk_seconds": 20.0},
        },
    ),
    (["ladder", "--audio-bitrates", ""], {"audio_bitrates_kbps": []}),
    (["probe"], {}),
]


@pytest.mark.parametrize(("argv", "fields"), EXISTING)
def test_the_flags_users_type_still_make_the_operation(
    argv: list[str], fields: dict[str, Any]
) -> None:
    op = operation_from(parsed(*argv))
    assert op == {"op": argv[0], **fields}
    TypeAdapter(Operation).validate_python(op)  # and the model takes it


def test_a_flag_of_another_operation_names_the_operation_s_own() -> None:
    with pytest.raises(FlagError) as caught:
        operation_from(parsed("thumbnail", "--crf", "20", "--bitrate", "96"))
    assert str(caught.value) == (
        "thumbnail does not take --crf, --bitrate; its flags: --time, --width, --height, --format"
    )


def test_a_list_item_with_too_many_parts_is_a_usage_error() -> None:
    with pytest.raises(ValueError, match="--renditions takes HEIGHT:VIDEO_BITRATE"):
        operation_from(parsed("ladder", "--renditions", "720:2800:high:extra"))


def test_help_exits_0_and_shows_the_generated_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["submit", "-h"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "operation flags:" in out
    assert "--chunk-seconds SECONDS" in out
    assert "HEIGHT:VIDEO_BITRATE[:PROFILE][,...]" in out


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["submit", "transcode", "--path", "a.mp4", "--preset", "warp"], "invalid choice"),
        (["submit", "transcode", "--path", "a.mp4", "--crf", "high"], "invalid int value"),
        (["submit", "rotate", "--path", "a.mp4"], "invalid choice"),
    ],
)
def test_argparse_usage_errors_exit_2(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert said in capsys.readouterr().err


def test_a_usage_error_in_a_command_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Raised inside the command (operation_from, then the model): no traceback."""
    for argv, line in (
        (["thumbnail", "--crf", "20"], "thumbnail does not take --crf"),
        (["transcode", "--crf", "99"], "invalid --crf: 99 (must be at most 63)"),
    ):
        with pytest.raises(SystemExit) as exited:
            main(["submit", *argv, "--path", "a.mp4", "--server", "http://127.0.0.1:9"])
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith(f"ffpool submit: {line}")
        assert "Traceback" not in err
        assert err.count("\n") == 1


def test_a_boolean_field_would_be_a_flag_pair() -> None:
    """No operation has one yet; a new one gets --x/--no-x, unset unless given."""
    from pydantic import BaseModel

    from ffpool.cli.model_shapes import shape_of
    from ffpool.cli.op_flags import FieldUse, Flag, _argparse_kind

    class Fake(BaseModel):
        deinterlace: bool = False

    info = Fake.model_fields["deinterlace"]
    flag = Flag(
        "deinterlace", ("deinterlace",), [FieldUse("fake", "deinterlace", info, shape_of(bool))]
    )
    parser = argparse.ArgumentParser()
    parser.add_argument(flag.option, dest=flag.dest, help=help_text(flag), **_argparse_kind(flag))
    assert parser.parse_args([]).deinterlace is None
    assert parser.parse_args(["--no-deinterlace"]).deinterlace is False
    assert "[fake: default False]" in help_text(flag)
