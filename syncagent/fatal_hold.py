"""After the watch agent stopped on a fatal error, keep ``/healthz`` answering 503 with why.

Refused credentials (or another fatal 123pan answer) end the agent's passes, and ``run``
exits with its own status (3 for credentials) so that systemd does not restart it in a loop.
With monitoring on, an orchestrator (a container health check, a probe) would then see a port
that no longer answers, not the reason. So, with a monitor serving, the process stays: the
monitor answers 503 "stopped: credentials refused ..." until SIGTERM or Ctrl-C (then the exit
status is the fatal one, as without monitoring) or SIGHUP (the configuration and its secrets
file are read again and the agent starts again with them).
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from syncagent.reload import Reloader

__all__ = ["hold_until_stopped_or_reloaded"]

log = logging.getLogger("syncagent")


def hold_until_stopped_or_reloaded(reason: str, reloader: Reloader, stopping: list[int]) -> None:
    """Block until a stop signal (appended to ``stopping``) or a reload (``reloader.requested``).

    Runs in the main thread; the signal handlers only set an event.
    """
    woken = threading.Event()

    def on_stop(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)
        woken.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    reloader.arm(woken.set)
    log.error(
        "stopped: %s. /healthz answers 503 with this reason until syncagent is stopped "
        "(SIGTERM, Ctrl-C) or reloaded (SIGHUP, systemctl reload) with corrected settings",
        reason,
    )
    while not woken.wait(1.0):  # in slices: the handlers run between them
        pass
