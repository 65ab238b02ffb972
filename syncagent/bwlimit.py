"""Bandwidth limits and their timetable: what ``limits.upload_bandwidth``,
``limits.download_bandwidth`` and ``--bwlimit`` mean, and the rate they set at a given time.

Pure logic: parsing, the rate in force at a moment, and how to say it. The bytes themselves
are paced by :class:`syncagent.pan123.bandwidth.Throttle`, which asks :meth:`Timetable.rate`
for the rate now.

A limit is written as rclone writes ``--bwlimit``, so a user who knows one knows the other:

``off`` (or ``0``)
    No limit.
``2M``, ``512k``, ``1.5MiB``, ``4000000``
    A rate in bytes per second, all day (decimal units by default, as link speeds are given;
    ``KiB``/``MiB`` for binary ones; ``/s`` may follow).
``08:00,512k 19:00,2M 23:00,off``
    A timetable: each entry sets the rate from its time of day (local time) until the next
    entry; before the first entry of a day, the day's last entry still holds (it began the
    evening before).
``Mon-08:00,512k Sat-00:00,off``
    A weekly timetable: each entry starts on its day (``Mon`` ... ``Sun``) and holds until
    the next one, wrapping from Sunday to Monday. Entries all name a day, or none does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

__all__ = ["DAYS", "UNLIMITED", "Slot", "Timetable", "human_rate", "parse_bandwidth"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ENTRY = re.compile(
    r"^(?:(?P<day>[a-z]{3})-)?(?P<hh>\d{1,2}):(?P<mm>\d{2}),(?P<rate>.+)$", re.IGNORECASE
)
_WEEK = 7 * 24 * 60


@dataclass(frozen=True)
class Slot:
    """One timetable entry: from ``start`` (minutes into the week, or into the day when the
    timetable is daily), ``rate`` bytes per second (0: no limit)."""

    start: int
    rate: int


@dataclass(frozen=True)
class Timetable:
    """A bandwidth limit over time. ``slots`` sorted by start, at least one; ``weekly``: the
    starts count minutes from Monday 00:00, else from midnight of every day."""

    slots: tuple[Slot, ...]
    weekly: bool = False
    text: str = "off"  # as the user wrote it (shown back in messages)

    @property
    def limited(self) -> bool:
        """Whether any entry sets a limit (a timetable of ``off`` only is no limit)."""
        return any(s.rate for s in self.slots)

    def _minute(self, when: datetime) -> int:
        minute = when.hour * 60 + when.minute
        return when.weekday() * 24 * 60 + minute if self.weekly else minute

    def _slot(self, minute: int) -> int:
        """The index of the slot in force at ``minute``: the last one started at or before
        it, or else -1, the last of all (it began the day, or the week, before)."""
        index = -1
        for i, slot in enumerate(self.slots):
            if slot.start <= minute:
                index = i
            else:
                break
        return index

    def rate_at(self, when: datetime) -> int:
        """Bytes per second allowed at ``when`` (local time); 0: no limit."""
        return self.slots[self._slot(self._minute(when))].rate

    def rate(self) -> int:
        """Bytes per second allowed now (the machine's local time)."""
        return self.rate_at(datetime.now())

    def change_after(self, when: datetime) -> datetime | None:
        """When the rate next changes after ``when`` (None: it never does)."""
        if len({s.rate for s in self.slots}) < 2:
            return None
        period = _WEEK if self.weekly else 24 * 60
        minute = self._minute(when)
        index = self._slot(minute)
        rate = self.slots[index].rate
        base = when.replace(second=0, microsecond=0) - timedelta(minutes=minute)
        for step in range(1, 2 * len(self.slots) + 1):
            k = index + step
            slot = self.slots[k % len(self.slots)]
            if slot.rate != rate:
                start = slot.start + period * (k // len(self.slots))
                return base + timedelta(minutes=start)
        return None  # unreachable: two rates differ

    def describe(self, when: datetime) -> str:
        """What holds at ``when``, for logs and ``status``: ``2 MB/s until 23:00``."""
        rate = self.rate_at(when)
        now = human_rate(rate) if rate else "no limit"
        change = self.change_after(when)
        if change is None:
            return now
        day = f"{DAYS[change.weekday()].title()} " if self.weekly else ""
        return f"{now} until {day}{change:%H:%M}"


UNLIMITED = Timetable((Slot(0, 0),))


def human_rate(rate: int) -> str:
    """``2.5 MB/s`` (decimal units, as the limits are usually written)."""
    value = float(rate)
    for unit in ("B/s", "kB/s", "MB/s", "GB/s"):
        if value < 1000 or unit == "GB/s":
            return f"{value:.3g} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def parse_bandwidth(value: Any, size: Callable[[Any], int | None]) -> Timetable:
    """A :class:`Timetable` from a config value or ``--bwlimit`` text.

    :param size: reads one rate (``2M``, ``512KiB``, an int) as bytes, None if it is not
        one: the config's own size rule, so rates and sizes are written alike.
    :raises ValueError: with a message saying what is wrong (shown after the config key).
    """
    if value is False or value is None:  # YAML 1.1 reads a bare `off` as false
        return UNLIMITED
    if isinstance(value, bool):
        raise ValueError("a rate (e.g. 2M), off, or a timetable (e.g. '08:00,512k 23:00,off')")
    text = str(value).strip()
    entries = text.split()
    if len(entries) == 1 and not {",", ":"} & set(entries[0]):
        return Timetable((Slot(0, _rate(entries[0], size)),), text=text)
    if not entries:
        raise ValueError("empty: write off for no limit")
    starts: dict[int, int] = {}
    days: set[bool] = set()
    for entry in entries:
        found = _ENTRY.match(entry)
        if found is None:
            raise ValueError(f"{entry!r} is not TIME,RATE (e.g. 08:00,512k or Mon-08:00,512k)")
        hh, mm, day = int(found["hh"]), int(found["mm"]), (found["day"] or "").lower() or None
        if hh > 23 or mm > 59:
            raise ValueError(f"{entry!r}: no such time of day")
        if day is not None and day not in DAYS:
            raise ValueError(f"{entry!r}: the day is one of {', '.join(d.title() for d in DAYS)}")
        days.add(day is not None)
        start = (DAYS.index(day) * 24 * 60 if day else 0) + hh * 60 + mm
        if start in starts:
            raise ValueError(f"{entry!r}: two entries start at the same time")
        starts[start] = _rate(found["rate"], size)
    if len(days) > 1:
        raise ValueError("either every entry names a day (Mon-08:00,1M) or none does")
    slots = tuple(Slot(start, rate) for start, rate in sorted(starts.items()))
    return Timetable(slots, weekly=days == {True}, text=text)


def _rate(text: str, size: Callable[[Any], int | None]) -> int:
    if text.lower() in ("off", "0", "none", "unlimited"):
        return 0
    bytes_per_second = size(text.removesuffix("/s").removesuffix("/S"))
    if bytes_per_second is None or bytes_per_second < 0:
        raise ValueError(f"{text!r} is not a rate (e.g. 2M, 512k, 1MiB, or off)")
    if 0 < bytes_per_second < 1000:
        raise ValueError(f"{text!r} is below 1k/s: too slow to finish any request")
    return bytes_per_second
