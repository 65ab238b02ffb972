"""``syncagent restore``: bring a backed-up root back into a folder, from any machine.

Needs only the account (or the embedded emulator) and the root's remote folder: no ledger,
no state. The steps, each in its own module:

- ``source``: what was backed up (the root's catalog; without one, the remote listing with
  mapped names mapped back);
- ``plan`` (pure): which entries, refusing any path that would leave the target folder, and
  one action per entry given what is on disk;
- ``probe``: what is on disk (never following a link);
- ``execute``: folders, parallel checked downloads, empty files, links, then folder modes
  and mtimes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from syncagent.catalog.format import Entry
from syncagent.restore.plan import Action, Selection, decide, select
from syncagent.restore.probe import Prober

__all__ = ["Planned", "plan_restore"]


@dataclass(frozen=True)
class Planned:
    selection: Selection
    actions: list[Action]


def plan_restore(
    entries: Sequence[Entry],
    dest: Path,
    paths: Sequence[str] = (),
    *,
    overwrite: bool = False,
    symlinks_outside: bool = False,
) -> Planned:
    """Select the entries under ``paths``, look at ``dest``, decide each entry's action."""
    selection = select(entries, paths)
    prober = Prober(dest)
    actions = [Action(Entry(p, "file"), "refused", reason=r) for p, r in selection.refused]
    actions += [
        decide(e, prober.look(e), overwrite=overwrite, symlinks_outside=symlinks_outside)
        for e in selection.entries
    ]
    return Planned(selection, actions)
