"""The client commands' configuration (cli/config.py): flag > environment > file > default,
the file's place, and a token file others can read refused; and the query commands' flags."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ffpool.cli import build_parser
from ffpool.cli.common import config_of, seconds, whole
from ffpool.cli.config import DEFAULT_SERVER, ConfigError, config_path, load
from ffpool.cli.interrupt import RECONNECT_FOR_S
from ffpool.domain.events import JobState


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("FFPOOL_SERVER", "FFPOOL_TOKEN", "FFPOOL_CONFIG", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def write_config(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def test_where_the_file_is(tmp_path: Path) -> None:
    home = {"HOME": str(tmp_path)}
    assert config_path(home) == (tmp_path / ".config" / "ffpool" / "config.toml", False)
    xdg = home | {"XDG_CONFIG_HOME": "/xdg"}
    assert config_path(xdg) == (Path("/xdg/ffpool/config.toml"), False)
    assert config_path(xdg | {"FFPOOL_CONFIG": "/etc/f.toml"}) == (Path("/etc/f.toml"), True)


def test_defaults_without_anything(home: Path) -> None:
    config = load()
    assert config.server == DEFAULT_SERVER
    assert config.token_value() is None


def test_precedence_flag_env_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(
        home / ".config" / "ffpool" / "config.toml",
        'server = "https://file.example.com"\ntoken = "ffp_file"\n',
    )
    assert (load().server, load().token_value()) == ("https://file.example.com", "ffp_file")
    monkeypatch.setenv("FFPOOL_SERVER", "https://env.example.com/")
    monkeypatch.setenv("FFPOOL_TOKEN", "ffp_env")
    assert (load().server, load().token_value()) == ("https://env.example.com", "ffp_env")
    flagged = load(server="http://127.0.0.1:9", token="ffp_flag")
    assert (flagged.server, flagged.token_value()) == ("http://127.0.0.1:9", "ffp_flag")
    assert "ffp_flag" not in repr(flagged)  # a token is never printed by accident


def test_ffpool_config_names_the_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    named = write_config(home / "elsewhere.toml", 'server = "https://named.example.com"\n')
    monkeypatch.setenv("FFPOOL_CONFIG", str(named))
    assert load().server == "https://named.example.com"
    monkeypatch.setenv("FFPOOL_CONFIG", str(home / "missing.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_token_others_can_read_is_refused(home: Path, mode: int) -> None:
    path = write_config(home / ".config" / "ffpool" / "config.toml", 'token = "x"\n', mode)
    with pytest.raises(ConfigError, match=f"chmod 600 {path}"):
        load()


@pytest.mark.parametrize("key", ["TOKEN", "Token", "tOkEn", '"token"'])
def test_a_token_in_any_spelling_others_can_read_is_refused(home: Path, key: str) -> None:
    # The settings read keys case-insensitively: what counts is what they load as the token.
    path = write_config(home / ".config" / "ffpool" / "config.toml", f'{key} = "x"\n', 0o644)
    with pytest.raises(ConfigError, match=f"chmod 600 {path}"):
        load()


def test_an_empty_environment_variable_is_unset(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(
        home / ".config" / "ffpool" / "config.toml",
        'server = "https://file.example.com"\ntoken = "ffp_file"\n',
    )
    monkeypatch.setenv("FFPOOL_TOKEN", "")
    monkeypatch.setenv("FFPOOL_SERVER", "")
    config = load()
    assert (config.server, config.token_value()) == ("https://file.example.com", "ffp_file")


def test_an_empty_token_is_no_token(home: Path) -> None:
    write_config(home / ".config" / "ffpool" / "config.toml", 'token = ""\n', 0o644)
    assert load().token_value() is None


def test_a_readable_file_without_a_token_is_fine(home: Path) -> None:
    write_config(
        home / ".config" / "ffpool" / "config.toml", 'server = "https://e.example.com"\n', 0o644
    )
    assert load().server == "https://e.example.com"


@pytest.mark.parametrize(
    ("text", "words"),
    [("server = ", "cannot be read"), ('server = "ftp://x"\n', "server URL 'ftp://x'")],
)
def test_bad_files_in_words(home: Path, text: str, words: str) -> None:
    write_config(home / ".config" / "ffpool" / "config.toml", text)
    with pytest.raises(ConfigError, match=words):
        load()


def test_query_commands_parse(home: Path) -> None:
    parse = build_parser().parse_args
    job = "a" * 32
    status = parse(["status", job, "--json", "--server", "https://e.example.com"])
    assert (status.job_id, status.json, config_of(status).server) == (
        job,
        True,
        "https://e.example.com",
    )
    jobs = parse(["jobs", "--state", "queued,running", "--limit", "5"])
    assert jobs.state == frozenset({JobState.QUEUED, JobState.RUNNING})
    assert jobs.limit == 5
    assert parse(["jobs"]).state == frozenset()
    download = parse(["download", job, "-o", "x.jpg", "--output-dir", "out", "--http", "http://h"])
    assert (str(download.out), download.output_dir, download.http) == (
        "x.jpg",
        Path("out"),
        "http://h",
    )
    assert parse(["download", job]).output_dir == Path(".")
    assert parse(["dead-letters", "--limit", "1000", "--debug"]).limit == 1000


@pytest.mark.parametrize(
    "argv",
    [
        ["jobs", "--state", "done"],
        ["jobs", "--limit", "0"],
        ["jobs", "--limit", "1001"],
        ["dead-letters", "--limit", "x"],
        ["status"],
    ],
)
def test_bad_query_flags_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 2
    assert capsys.readouterr().err


@pytest.mark.parametrize("text", ["-1", "nan", "inf", "-inf", "NaN", "ten", ""])
def test_seconds_refuses_what_is_no_duration(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="a number of seconds, 0 or more"):
        seconds(text)


def test_seconds_and_whole_take_what_they_should() -> None:
    assert (seconds("0"), seconds("2.5"), seconds(" 60 ")) == (0.0, 2.5, 60.0)
    assert whole(1, 1000)("1000") == 1000
    for bad in ("0", "1001", "\u00b2", "\u0661\u0662", "1e3", "-5"):
        with pytest.raises(argparse.ArgumentTypeError, match="a whole number from 1 to 1000"):
            whole(1, 1000)(bad)


def test_watch_reconnects_for_a_bounded_time(capsys: pytest.CaptureFixture[str]) -> None:
    parse = build_parser().parse_args
    job = "a" * 32
    assert parse(["watch", job]).reconnect_for == RECONNECT_FOR_S
    assert parse(["watch", job, "--reconnect-for", "5"]).reconnect_for == 5.0
    for bad in ("-1", "nan"):
        with pytest.raises(SystemExit) as exit_:
            parse(["watch", job, "--reconnect-for", bad])
        assert exit_.value.code == 2
        assert "a number of seconds" in capsys.readouterr().err
