"""syncagent's own chaos suite: seeded, randomized end-to-end runs of the installed CLI.

From one seed, :mod:`.plan` generates (purely, printably) a list of steps that mix local file
operations, emulator faults and passes of ``syncagent sync`` / ``syncagent run`` that are
SIGKILLed or stopped part-way; :mod:`.driver` carries them out against an emulator in this
process; :mod:`.invariants` checks, after a final clean pass, what must hold whatever happened.

Run a short version with ``pytest tests/chaos`` and a long one with
``.venv/bin/python -m tests.chaos --seeds 200`` (see ``__main__``).
"""
