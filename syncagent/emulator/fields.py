"""Lenient reading of request parameters, the way the real (Go) backend reads them.

JSON keys match case-insensitively (``parentFileId`` works for ``parentFileID``), numbers may
come as decimal strings, booleans as ``"true"``/``"false"``, ``null`` and empty query values
count as absent. Anything else that does not fit is refused with a ``bad_request`` rejection
naming the parameter, never a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping

from syncagent.errors import EmulatorRejection

__all__ = ["Fields"]

_MAX_INT = (1 << 63) - 1


class Fields:
    """Parameters of one request (JSON object, query string or multipart fields).

    :param raw: the decoded parameters.
    :param bad_request_code: the business code for a malformed parameter.
    """

    def __init__(self, raw: Mapping[str, object], bad_request_code: int) -> None:
        self._values = {k.lower(): v for k, v in raw.items()}
        self._code = bad_request_code

    def _bad(self, name: str, why: str) -> EmulatorRejection:
        return EmulatorRejection(self._code, f"参数错误: {name} {why}")

    def _get(self, name: str) -> object:
        value = self._values.get(name.lower())
        return None if value == "" else value

    def has(self, name: str) -> bool:
        return self._get(name) is not None

    def number(self, name: str, default: int | None = None) -> int:
        """An integer parameter; ``default`` None means required."""
        value = self._get(name)
        if value is None:
            if default is None:
                raise self._bad(name, "is required")
            return default
        if isinstance(value, bool):
            raise self._bad(name, "must be a number")
        if isinstance(value, int):
            result = value
        elif isinstance(value, float) and value.is_integer():
            result = int(value)
        elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
            result = int(value.strip())
        else:
            raise self._bad(name, "must be a number")
        if abs(result) > _MAX_INT:
            raise self._bad(name, "is out of range")
        return result

    def text(self, name: str, required: bool = True) -> str:
        value = self._get(name)
        if value is None:
            if required:
                raise self._bad(name, "is required")
            return ""
        if not isinstance(value, str):
            raise self._bad(name, "must be a string")
        return value

    def flag(self, name: str) -> bool:
        value = self._get(name)
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        raise self._bad(name, "must be true or false")

    def id_list(self, name: str, most: int) -> list[int]:
        value = self._get(name)
        if not isinstance(value, list) or not value:
            raise self._bad(name, "must be a non-empty list of ids")
        if len(value) > most:
            raise self._bad(name, f"holds more than {most} ids")
        sub = Fields({"id": None}, self._code)
        result = []
        for item in value:
            sub._values["id"] = item
            result.append(sub.number("id"))
        return result

    def text_list(self, name: str, most: int) -> list[str]:
        value = self._get(name)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise self._bad(name, "must be a non-empty list of strings")
        if len(value) > most:
            raise self._bad(name, f"holds more than {most} items")
        return [str(v) for v in value]
