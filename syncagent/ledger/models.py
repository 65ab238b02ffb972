"""The ledger's tables (SQLAlchemy 2.x declarative models); Alembic migrations mirror them.

- ``hosts``: every agent that uses the ledger (a fleet shares one): stable ID, name, seen.
- ``roots``: each watched folder of a host, the remote folder it maps to, and the 123pan account its
  rows are bound to (API base, client ID, uid): rows made for another account or another
  remote folder prove nothing about this one.
- ``files``: one row per local file: what was seen (size, mtime_ns, ctime_ns, dev, inode), its
  MD5 (valid while those match), where it is remotely, its state, and per-file retry bookkeeping.
- ``remote_dirs``: remote folder IDs by relative path (the persisted directory cache).
- ``upload_sessions`` / ``upload_slices``: resumable chunked uploads.
- ``passes``: one row per sync pass (bounded history).
- ``kv``: small settings of the ledger itself.

``tests`` check that these models and the migrations agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "KV",
    "Base",
    "FileRow",
    "Host",
    "PassRow",
    "RemoteDir",
    "Root",
    "UploadSessionRow",
    "UploadSliceRow",
]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Host(Base):
    __tablename__ = "hosts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # kept in its state dir
    name: Mapped[str] = mapped_column(Text)  # fleet.host, or the machine's hostname
    first_seen: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float)


class Root(Base):
    __tablename__ = "roots"
    __table_args__ = (UniqueConstraint("host_id", "local_path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # None: made before hosts existed (0003), until the first host claims it
    host_id: Mapped[str | None] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    local_path: Mapped[str] = mapped_column(Text)
    remote_path: Mapped[str] = mapped_column(Text)
    remote_id: Mapped[int | None] = mapped_column(BigInteger)
    mode: Mapped[str] = mapped_column(String(16), default="archive")
    created_at: Mapped[float] = mapped_column(Float)
    api_base: Mapped[str | None] = mapped_column(Text)  # the account the rows are bound to
    client_id: Mapped[str | None] = mapped_column(Text)
    account_uid: Mapped[int | None] = mapped_column(BigInteger)


class FileRow(Base):
    __tablename__ = "files"
    __table_args__ = (
        UniqueConstraint("root_id", "rel_path"),
        Index("ix_files_dev_inode", "dev", "inode"),
        Index("ix_files_state_next", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    root_id: Mapped[int] = mapped_column(ForeignKey("roots.id", ondelete="CASCADE"))
    rel_path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    mtime_ns: Mapped[int] = mapped_column(BigInteger, default=0)
    ctime_ns: Mapped[int] = mapped_column(BigInteger, default=0)
    dev: Mapped[int] = mapped_column(BigInteger, default=0)
    inode: Mapped[int] = mapped_column(BigInteger, default=0)
    md5: Mapped[str | None] = mapped_column(String(32))
    remote_name: Mapped[str | None] = mapped_column(Text)
    remote_id: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), default="new")
    reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float, default=0.0)
    last_error_code: Mapped[int | None] = mapped_column(Integer)
    trace_id: Mapped[str | None] = mapped_column(String(128))
    uploaded_at: Mapped[float | None] = mapped_column(Float)
    verified_at: Mapped[float | None] = mapped_column(Float)
    seen_pass: Mapped[int] = mapped_column(Integer, default=0)


class RemoteDir(Base):
    __tablename__ = "remote_dirs"

    root_id: Mapped[int] = mapped_column(
        ForeignKey("roots.id", ondelete="CASCADE"), primary_key=True
    )
    rel_path: Mapped[str] = mapped_column(Text, primary_key=True)
    file_id: Mapped[int] = mapped_column(BigInteger)


class UploadSessionRow(Base):
    __tablename__ = "upload_sessions"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    preupload_id: Mapped[str] = mapped_column(Text)
    slice_size: Mapped[int] = mapped_column(BigInteger)
    server: Mapped[str] = mapped_column(Text)
    md5: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float] = mapped_column(Float)


class UploadSliceRow(Base):
    __tablename__ = "upload_slices"

    key: Mapped[str] = mapped_column(
        ForeignKey("upload_sessions.key", ondelete="CASCADE"), primary_key=True
    )
    slice_no: Mapped[int] = mapped_column(Integer, primary_key=True)


class PassRow(Base):
    __tablename__ = "passes"
    __table_args__ = (Index("ix_passes_host_id", "host_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)
    uploaded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    bytes_sent: Mapped[int] = mapped_column(BigInteger, default=0)
    result: Mapped[str | None] = mapped_column(String(16))


class KV(Base):
    __tablename__ = "kv"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
