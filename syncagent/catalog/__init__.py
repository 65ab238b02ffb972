"""The catalog kept in the cloud: what restore needs and 123pan itself does not keep.

For each root, ``<remote root>/.syncagent/catalog-<time>-<digest>.jsonl.gz`` lists every
file with its original local path (before name mapping), size, MD5, mtime, mode and fileID,
and folders (empty ones too), empty files and symbolic links with their targets, plus the
host and root it came from and a format version.

- ``format``: the object's encoding (pure);
- ``delta``: a large root's small delta objects against its last full catalog (pure);
- ``build``: the entries of a root, from an lstat walk joined with the ledger;
- ``remote``: publish a new object then trash the older ones (crash-safe), and fetch the
  newest readable one;
- ``keeper``: after a pass, publish the roots that changed (nothing on a no-op pass).

The ``.syncagent`` folder is never a user file: mirror deletes, verify and the planner
leave it alone (a local top-level ``.syncagent`` is skipped with a reason).
"""

from __future__ import annotations

CATALOG_DIR = ".syncagent"

__all__ = ["CATALOG_DIR"]
