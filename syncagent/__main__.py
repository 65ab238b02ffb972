"""``python -m syncagent``: the same as the ``syncagent`` command."""

from __future__ import annotations

from syncagent.cli import entry

if __name__ == "__main__":
    entry()
