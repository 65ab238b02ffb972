"""Mapping local names to names 123pan accepts (pure).

123pan refuses ``" \\ / : * ? | > <`` in a name, names of only spaces and names over 255
characters. Policy ``map`` replaces the forbidden characters by their full-width look-alikes
(the convention other 123pan clients use); ``skip`` refuses such names. Either way, names that
cannot be fixed (all spaces, too long, control characters) are refused with a reason.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["FULL_WIDTH", "NameRefused", "remote_path"]

FULL_WIDTH = str.maketrans(
    {'"': "＂", "\\": "＼", ":": "：", "*": "＊", "?": "？", "|": "｜", ">": "＞", "<": "＜"}
)
_FORBIDDEN = frozenset('"\\:*?|><')
MAX_NAME = 255


class NameRefused(ValueError):
    """``str()`` is the reason shown in ``status``."""


def _segment(name: str, policy: Literal["map", "skip"]) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise NameRefused("name contains control characters")
    if name.strip(" ") == "":
        raise NameRefused("name is only spaces (123pan refuses it)")
    if _FORBIDDEN & set(name):
        if policy == "skip":
            chars = "".join(sorted(_FORBIDDEN & set(name)))
            raise NameRefused(f"name contains characters 123pan refuses: {chars}")
        name = name.translate(FULL_WIDTH)
    if len(name) > MAX_NAME:
        raise NameRefused(f"name is {len(name)} characters long (123pan allows {MAX_NAME})")
    return name


def remote_path(rel_path: str, policy: Literal["map", "skip"] = "map") -> str:
    """The 123pan path for a local relative path, or NameRefused with the reason."""
    try:
        rel_path.encode("utf-8")
    except UnicodeEncodeError:
        raise NameRefused("name is not valid UTF-8") from None
    return "/".join(_segment(part, policy) for part in rel_path.split("/"))
