"""syncagent: watch local folders and back them up to 123pan (123云盘)."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
