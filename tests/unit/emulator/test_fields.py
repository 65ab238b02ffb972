"""Lenient parameter decoding: what the real backend tolerates, and clear refusals otherwise."""

from __future__ import annotations

import pytest

from syncagent.emulator.fields import Fields
from syncagent.errors import EmulatorRejection


def test_keys_match_case_insensitively() -> None:
    f = Fields({"parentFileId": 5, "CLIENTID": "x"}, 1)
    assert f.number("parentFileID") == 5
    assert f.text("clientID") == "x"


@pytest.mark.parametrize(("raw", "value"), [(7, 7), ("7", 7), (" 7 ", 7), (7.0, 7), ("-1", -1)])
def test_numbers_may_be_strings(raw: object, value: int) -> None:
    assert Fields({"n": raw}, 1).number("n") == value


@pytest.mark.parametrize("raw", ["abc", [1], {"a": 1}, True, 1.5, "1e3"])
def test_wrong_number_types_are_refused_with_the_name(raw: object) -> None:
    with pytest.raises(EmulatorRejection) as info:
        Fields({"size": raw}, 400).number("size")
    assert info.value.code == 400
    assert "size" in info.value.message


def test_null_and_empty_count_as_absent() -> None:
    f = Fields({"a": None, "b": ""}, 1)
    assert f.number("a", 3) == 3
    assert f.text("b", required=False) == ""
    with pytest.raises(EmulatorRejection, match="a is required"):
        f.number("a")


@pytest.mark.parametrize(
    ("raw", "value"),
    [("true", True), ("false", False), (True, True), (0, False), ("1", True), (None, False)],
)
def test_booleans(raw: object, value: bool) -> None:
    assert Fields({"containDir": raw}, 1).flag("containDir") is value


def test_bad_boolean_is_refused() -> None:
    with pytest.raises(EmulatorRejection):
        Fields({"containDir": "yes"}, 1).flag("containDir")


def test_id_lists() -> None:
    assert Fields({"fileIDs": [1, "2"]}, 1).id_list("fileIDs", 100) == [1, 2]
    for bad in ([], "1", [1, "x"], list(range(101))):
        with pytest.raises(EmulatorRejection):
            Fields({"fileIDs": bad}, 1).id_list("fileIDs", 100)
