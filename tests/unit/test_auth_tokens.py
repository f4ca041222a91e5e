"""The tokens file (pure): its format, bad lines by number only, constant-time matching, and
`ffpool token create`."""

from __future__ import annotations

import hmac
from pathlib import Path

import pytest

from ffpool.auth import tokens
from ffpool.auth.tokens import TokenEntry, file_line, hash_token, match, new_token, parse_tokens
from ffpool.cli import build_parser, main
from ffpool.cli.common import config_of


def test_parse_lines_comments_and_blanks() -> None:
    a, b = new_token(), new_token()
    text = f"# tenants of pool p1\n\n{file_line('acme', a)}\n   \n{file_line('globex-2', b)}  \n"
    parsed = parse_tokens(text)
    assert [e.tenant for e in parsed.entries] == ["acme", "globex-2"]
    assert parsed.bad_lines == ()
    assert parsed.entries[0].digest == hash_token(a)


def test_bad_lines_are_reported_by_number_never_content() -> None:
    leaked = new_token()
    text = "\n".join(
        [
            file_line("acme", new_token()),
            leaked,  # someone pasted the raw token
            f"Acme sha256:{'0' * 64}",  # not a DNS label
            f"acme md5:{'0' * 32}",
            f"acme sha256:{'0' * 63}",
            f"anonymous sha256:{'0' * 64}",  # the anonymous tenant is nobody's token
            f"acme sha256:{'0' * 64} extra",
        ]
    )
    parsed = parse_tokens(text)
    assert len(parsed.entries) == 1
    assert parsed.bad_lines == (2, 3, 4, 5, 6, 7)
    assert leaked not in parsed.model_dump_json()


def test_match_finds_the_entry() -> None:
    a, b = new_token(), new_token()
    entries = parse_tokens(f"{file_line('acme', a)}\n{file_line('globex', b)}").entries
    assert match(entries, a) == entries[0]
    assert match(entries, b) == entries[1]
    for wrong in ("", a[:-1], a + "x", "x" * 10_000, "ffp_\udcff"):
        assert match(entries, wrong) is None


def test_match_compares_every_entry_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """compare_digest on every entry, whether the first matches, the last, or none."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(tokens.hmac, "compare_digest", counting)
    presented = [new_token() for _ in range(5)]
    entries = tuple(TokenEntry(tenant="t", digest=hash_token(t)) for t in presented)
    for token in (presented[0], presented[-1], new_token()):
        calls.clear()
        match(entries, token)
        assert len(calls) == len(entries)
        assert all(len(a) == len(b) == 64 for a, b in calls)


def test_new_tokens_are_long_and_distinct() -> None:
    made = {new_token() for _ in range(100)}
    assert len(made) == 100
    assert all(t.startswith("ffp_") and len(t) >= 40 for t in made)


def test_token_create_prints_token_then_its_file_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["token", "create", "--tenant", "acme"])
    assert exit_.value.code == 0
    token, line = capsys.readouterr().out.splitlines()
    assert line == f"acme sha256:{hash_token(token)}"
    entries = parse_tokens(f"# added by hand\n{line}\n").entries
    assert match(entries, token) == TokenEntry(tenant="acme", digest=hash_token(token))


@pytest.mark.parametrize("tenant", ["Acme", "anonymous", "-x", "a" * 64, "a_b"])
def test_token_create_refuses_bad_tenants(tenant: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["token", "create", "--tenant", tenant])
    assert exit_.value.code == 2
    assert capsys.readouterr().out == ""


def test_submit_takes_its_token_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The flag wins over the environment; the configuration resolves it (cli/config.py)."""
    monkeypatch.delenv("FFPOOL_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("FFPOOL_TOKEN", "ffp_from_env")
    args = build_parser().parse_args(["submit", "probe", "--path", "clips/a.mp4"])
    assert args.token is None  # not given: the environment is read when the command runs
    assert config_of(args).token_value() == "ffp_from_env"
    args = build_parser().parse_args(["submit", "probe", "--path", "a.mp4", "--token", "ffp_flag"])
    assert config_of(args).token_value() == "ffp_flag"
    monkeypatch.delenv("FFPOOL_TOKEN")
    args = build_parser().parse_args(["submit", "probe", "--path", "a.mp4"])
    assert config_of(args).token_value() is None
