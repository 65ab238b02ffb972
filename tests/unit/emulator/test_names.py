"""123pan's name rules as the emulator applies them (pure functions)."""

from __future__ import annotations

import pytest

from syncagent.emulator.names import MAX_NAME, NameProblem, check_name, split_path, suffixed


@pytest.mark.parametrize("ch", list('"\\/:*?|><'))
def test_each_forbidden_character_is_refused(ch: str) -> None:
    with pytest.raises(NameProblem, match="文件名要小于256个字符"):
        check_name(f"a{ch}b.txt")


@pytest.mark.parametrize("name", [" ", "   ", " " * 255])
def test_all_space_names_are_refused(name: str) -> None:
    with pytest.raises(NameProblem, match="空格"):
        check_name(name)


def test_length_limit_is_255_characters_not_bytes() -> None:
    assert check_name("测" * MAX_NAME) == "测" * MAX_NAME
    with pytest.raises(NameProblem):
        check_name("a" * (MAX_NAME + 1))


def test_names_with_inner_spaces_and_unicode_are_fine() -> None:
    for name in [" lead", "trail ", "a b", "测试.exe", "emoji😀", ".hidden", "＂full＂"]:
        assert check_name(name) == name


@pytest.mark.parametrize(
    ("path", "segments"),
    [("a/b/c.txt", ["a", "b", "c.txt"]), ("/a/b/c.txt", ["a", "b", "c.txt"]), ("c", ["c"])],
)
def test_split_path_leading_slash_optional(path: str, segments: list[str]) -> None:
    assert split_path(path) == segments


@pytest.mark.parametrize("path", ["a//b", "a/./b", "a/../b", "/", "", "a/b/", "a/x:y/c"])
def test_split_path_refuses_bad_segments(path: str) -> None:
    with pytest.raises(NameProblem):
        split_path(path)


def test_every_segment_is_checked() -> None:
    with pytest.raises(NameProblem):
        split_path("ok/" + "x" * 256 + "/file.txt")
    with pytest.raises(NameProblem):
        split_path("ok/   /file.txt")


@pytest.mark.parametrize(
    ("name", "n", "expected"),
    [
        ("a.txt", 1, "a(1).txt"),
        ("a.tar.gz", 2, "a.tar(2).gz"),
        ("archive", 1, "archive(1)"),
        (".bashrc", 3, ".bashrc(3)"),
    ],
)
def test_keep_both_suffix(name: str, n: int, expected: str) -> None:
    assert suffixed(name, n) == expected
