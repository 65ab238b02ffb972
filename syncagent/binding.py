"""Which 123pan account and remote folder a root's ledger rows were made for (pure).

A row recorded ``done`` says "this file is safe on *that* account, in *that* folder". Rows
made for another API base, another client ID, another account (uid) or another ``remote:``
folder say nothing about where the agent backs up now: :func:`binding_change` names the
difference, and the engine then checks the rows against the remote instead of trusting them.

The embedded emulator listens on a new port each run, so its rows are bound to
:data:`EMBEDDED` rather than to its URL; its client ID (made once per data dir) still tells
one emulator data dir from another.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EMBEDDED", "Account", "Bound", "binding_change"]

EMBEDDED = "embedded-emulator"  # the api_base recorded for the embedded emulator


@dataclass(frozen=True)
class Account:
    """Where the agent backs up now. ``uid`` is 123pan's, read from ``user/info`` when a
    root is (re)bound."""

    api_base: str
    client_id: str

    def describe(self) -> str:
        if self.api_base == EMBEDDED:
            return f"the embedded local emulator (client ID {self.client_id})"
        return f"the 123pan account at {self.api_base} (client ID {self.client_id})"


@dataclass(frozen=True)
class Bound:
    """What the ledger records of a root: its binding (None before any) and remote folder."""

    api_base: str | None
    client_id: str | None
    uid: int | None
    remote_path: str

    def describe(self) -> str:
        if self.api_base is None or self.client_id is None:
            return "an unrecorded account (a ledger of an older syncagent)"
        return Account(self.api_base, self.client_id).describe()


def binding_change(
    bound: Bound, account: Account, remote_path: str, uid: int | None = None
) -> str | None:
    """Why the root's rows cannot be trusted for ``account`` and ``remote_path``, or None.

    :param uid: the account's 123pan uid, when it was read (the remote check reads it; a
        client ID belongs to one account, so a plain pass does not spend a request on it).
    :returns: a sentence for the user, e.g. "its ledger was made for ... and this run uses ...".
    """
    if (bound.api_base, bound.client_id) != (account.api_base, account.client_id):
        return f"its ledger was made for {bound.describe()}, and this run uses {account.describe()}"
    if uid is not None and bound.uid is not None and uid != bound.uid:
        return f"its ledger was made for 123pan user {bound.uid}, and this account is user {uid}"
    if bound.remote_path != remote_path:
        return f"its remote folder changed from {bound.remote_path} to {remote_path}"
    return None
