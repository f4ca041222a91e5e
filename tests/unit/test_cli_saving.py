"""Where `ffpool submit` saves outputs (cli/saving.py): the names, decided without I/O, and the
reservation that makes a second run pick the next name."""

from __future__ import annotations

from pathlib import Path

import pytest

from ffpool.cli.saving import Target, input_stem, inside, local_target, reserve, target_for
from ffpool.cli.untrusted import UnsafeName


@pytest.mark.parametrize(
    ("source", "stem"),
    [
        ("clip.mp4", "clip"),
        ("/home/me/videos/holiday.final.mov", "holiday.final"),
        ("clips/a.mp4", "a"),
        ("https://cdn.example.com/v/talk.webm?sig=abc#t=3", "talk"),
        ("https://cdn.example.com/v/my%20talk.webm", "my talk"),
        ("s3://media-in/acme/2024/interview.mkv", "interview"),
        ("s3://media-in/acme/raw/", "raw"),
        ("https://example.com/", "output"),
        ("noextension", "noextension"),
        ("C:\\videos\\win.mp4", "win"),
        ("..", "output"),
    ],
)
def test_input_stem(source: str, stem: str) -> None:
    assert input_stem(source) == stem


def test_one_output_is_numbered_beside_earlier_runs() -> None:
    target = target_for(["output.mp4"], stem="clip", op="transcode", output_dir=Path("out"))
    assert [target.candidate(n) for n in range(3)] == [
        Path("out/clip.transcode.mp4"),
        Path("out/clip.transcode.1.mp4"),
        Path("out/clip.transcode.2.mp4"),
    ]
    assert not target.is_dir
    assert not target.exact


def test_the_extension_is_the_outputs() -> None:
    target = target_for(["thumbnail.webp"], stem="a", op="thumbnail", output_dir=Path("."))
    assert target.candidate(0) == Path("a.thumbnail.webp")
    audio = target_for(["audio.mp3"], stem="a", op="extract_audio", output_dir=Path("."))
    assert audio.candidate(1) == Path("a.extract_audio.1.mp3")


def test_several_outputs_are_a_numbered_directory() -> None:
    names = ["master.m3u8", "720p.m3u8", "720p_0001.m4s"]
    target = target_for(names, stem="clip", op="ladder", output_dir=Path("out"))
    assert target.is_dir
    assert not target.exact
    assert target.candidate(0) == Path("out/clip.ladder")
    assert target.candidate(1) == Path("out/clip.ladder.1")


def test_o_is_exact_for_one_output_and_the_directory_for_several() -> None:
    one = target_for(
        ["output.mp4"], stem="c", op="transcode", output_dir=Path("d"), exact=Path("x/y.mkv")
    )
    assert (one.candidate(0), one.candidate(5), one.exact, one.is_dir) == (
        Path("x/y.mkv"),
        Path("x/y.mkv"),
        True,
        False,
    )
    many = target_for(
        ["a.m3u8", "b.m4s"], stem="c", op="ladder", output_dir=Path("d"), exact=Path("pkg")
    )
    assert (many.candidate(0), many.exact, many.is_dir) == (Path("pkg"), True, True)


def test_o_naming_an_existing_directory_receives_the_numbered_name() -> None:
    target = target_for(
        ["output.mp4"],
        stem="c",
        op="transcode",
        output_dir=Path("d"),
        exact=Path("videos"),
        exact_is_dir=True,
    )
    assert (target.candidate(0), target.exact) == (Path("videos/c.transcode.mp4"), False)


@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "a/b", "..", "", "a\\b", "a\x1b"])
def test_a_package_output_cannot_leave_its_directory(name: str) -> None:
    with pytest.raises(UnsafeName, match="unsafe output name"):
        inside(Path("pkg"), name)
    assert inside(Path("pkg"), "master.m3u8") == Path("pkg/master.m3u8")


def test_reserve_never_takes_an_existing_name(tmp_path: Path) -> None:
    file = Target(tmp_path / "new", "clip.transcode", ".mp4", is_dir=False, exact=False)
    first, second = reserve(file), reserve(file)
    assert (first.name, second.name) == ("clip.transcode.mp4", "clip.transcode.1.mp4")
    first.write_bytes(b"earlier run")
    folder = Target(tmp_path, "clip.ladder", "", is_dir=True, exact=False)
    assert [reserve(folder).name for _ in range(2)] == ["clip.ladder", "clip.ladder.1"]
    assert first.read_bytes() == b"earlier run"
    exact = Target(tmp_path / "new", "clip.transcode.mp4", "", is_dir=False, exact=True)
    assert reserve(exact) == first  # the user named it: taken as it is


def test_o_ending_in_a_slash_is_a_directory_for_one_output() -> None:
    here = Path(".")
    assert local_target(None, here, 1) == (None, here)
    assert local_target("out/", here, 1) == (None, Path("out"))
    assert local_target("out/x.mp4", here, 1) == (Path("out/x.mp4"), here)
    assert local_target("talk-hls/", here, 7) == (Path("talk-hls"), here)  # the package's dir


@pytest.mark.parametrize(
    ("names", "op"),
    [
        (["a.jpg"], "x/../../escaped"),  # the operation is a path
        (["a.jpg"], ".."),
        (["a.jpg"], "thumb nail\x1b[2J"),
        (["a.jp/g"], "thumbnail"),  # an output name is a path
        (["a.j\x1bg"], "thumbnail"),  # or its extension holds a control character
        (["ok.m3u8", "../../escaped.ts"], "ladder"),  # one of a package's outputs
        (["ok.m3u8", ".."], "ladder"),
    ],
)
def test_a_name_from_the_server_that_is_not_one_plain_component_is_refused(
    names: list[str], op: str, tmp_path: Path
) -> None:
    with pytest.raises(UnsafeName, match="the server sent an unsafe output name"):
        target_for(names, stem="0123abcd", op=op, output_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # refused before anything was created


def test_reserve_never_follows_a_way_out_of_its_directory(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link").symlink_to(outside)
    target = Target(tmp_path / "out", "link/clip.transcode", ".mp4", is_dir=False, exact=False)
    with pytest.raises(UnsafeName):
        reserve(target)
    assert list(outside.iterdir()) == []
