"""``python -m syncagent.emulator``: the same as ``syncagent emulator``."""

from __future__ import annotations

from syncagent.cli import emulator_command

if __name__ == "__main__":
    emulator_command(prog_name="python -m syncagent.emulator")
