"""A local emulator of the 123pan Open Platform API, part of the product.

It lets anyone try syncagent without an account and lets every test run offline. It follows
the API reference in every documented detail and makes each undocumented behaviour a setting
(:class:`EmulatorSettings`). It shares no code with the client (``syncagent.pan123``): one
misunderstanding must not hide on both sides. Module map:

- ``server``   — :class:`Emulator`: two loopback listeners, the Python API and fault verbs
- ``handler``  — HTTP: envelope, headers, body streaming, dispatch
- ``routes``   — method + path → endpoint
- ``files``    — token, user info, domain, mkdir, list, detail, trash/delete/recover, move, rename
- ``uploads``  — single-step create, V2 create / slice / upload_complete
- ``core``     — shared state and rules (auth, containDir, duplicate policy)
- ``catalog``  — metadata in SQLite; ``blobs`` — content on disk
- ``names``, ``fields``, ``tokens``, ``ratelimit``, ``faults``, ``multipart`` — small rules
- ``admin``    — the ``/__emulator/`` HTTP endpoint
"""

from __future__ import annotations

from syncagent.emulator.server import Emulator
from syncagent.emulator.settings import EmulatorSettings, ErrorCodes

__all__ = ["Emulator", "EmulatorSettings", "ErrorCodes"]
