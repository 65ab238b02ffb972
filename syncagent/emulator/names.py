"""123pan's rules for file and folder names, as the emulator enforces them.

A name may not contain any of ``"\\/:*?|><``, may not consist only of spaces and must be at most
255 characters (the documentation says both "under 256" and "under 255"; 255 is accepted). With
``containDir`` the ``/`` separates segments and every segment is checked. The suffix rule for
``duplicate=1`` (keep both) lives here too.

Pure functions; the caller turns :class:`NameProblem` into an envelope.
"""

from __future__ import annotations

import posixpath

__all__ = ["FORBIDDEN", "MAX_NAME", "NameProblem", "check_name", "split_path", "suffixed"]

FORBIDDEN = frozenset('"\\/:*?|><')
MAX_NAME = 255
INVALID_MESSAGE = '文件名要小于256个字符且不能包含以下任何字符："\\/:*?|><'


class NameProblem(ValueError):
    """A name 123pan would refuse; ``str()`` is the message the emulator answers with."""


def check_name(name: str) -> str:
    """Return ``name`` if 123pan accepts it as one path segment, else raise NameProblem."""
    if not name:
        raise NameProblem("文件名不能为空")
    if len(name) > MAX_NAME:
        raise NameProblem(INVALID_MESSAGE)
    if any(ch in FORBIDDEN for ch in name):
        raise NameProblem(INVALID_MESSAGE)
    if name.strip(" ") == "":
        raise NameProblem("文件名不能全部是空格")
    return name


def split_path(path: str) -> list[str]:
    """Split a ``containDir`` path into checked segments; a leading ``/`` is optional.

    Empty segments (``a//b``), ``.`` and ``..`` are refused rather than normalised: the real
    service documents none of them and a client relying on them is wrong either way.
    """
    body = path[1:] if path.startswith("/") else path
    if not body:
        raise NameProblem("文件名不能为空")
    segments = body.split("/")
    for seg in segments:
        if seg in ("", ".", ".."):
            raise NameProblem(f"路径不合法: {path!r}")
        # "/" cannot occur inside a segment here; the other forbidden characters can.
        check_name(seg)
    return segments


def suffixed(name: str, n: int) -> str:
    """The ``n``-th keep-both name: ``a.txt`` -> ``a(1).txt``; ``archive`` -> ``archive(1)``."""
    stem, ext = posixpath.splitext(name)  # ".bashrc" -> (".bashrc", "")
    return f"{stem}({n}){ext}"
