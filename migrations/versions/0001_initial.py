"""initial ledger schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 20:10:55.847520
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "kv",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_kv")),
    )
    op.create_table(
        "passes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("uploaded", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("bytes_sent", sa.BigInteger(), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passes")),
    )
    op.create_table(
        "roots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("local_path", sa.Text(), nullable=False),
        sa.Column("remote_path", sa.Text(), nullable=False),
        sa.Column("remote_id", sa.BigInteger(), nullable=True),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roots")),
        sa.UniqueConstraint("local_path", name=op.f("uq_roots_local_path")),
    )
    op.create_table(
        "upload_sessions",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("preupload_id", sa.Text(), nullable=False),
        sa.Column("slice_size", sa.BigInteger(), nullable=False),
        sa.Column("server", sa.Text(), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_upload_sessions")),
    )
    op.create_table(
        "files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("root_id", sa.Integer(), nullable=False),
        sa.Column("rel_path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("ctime_ns", sa.BigInteger(), nullable=False),
        sa.Column("dev", sa.BigInteger(), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=True),
        sa.Column("remote_name", sa.Text(), nullable=True),
        sa.Column("remote_id", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("last_error_code", sa.Integer(), nullable=True),
        sa.Column("trace_id", sa.String(length=128), nullable=True),
        sa.Column("uploaded_at", sa.Float(), nullable=True),
        sa.Column("verified_at", sa.Float(), nullable=True),
        sa.Column("seen_pass", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["root_id"], ["roots.id"], name=op.f("fk_files_root_id_roots"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_files")),
        sa.UniqueConstraint("root_id", "rel_path", name=op.f("uq_files_root_id")),
    )
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.create_index("ix_files_dev_inode", ["dev", "inode"], unique=False)
        batch_op.create_index("ix_files_state_next", ["state", "next_attempt_at"], unique=False)

    op.create_table(
        "remote_dirs",
        sa.Column("root_id", sa.Integer(), nullable=False),
        sa.Column("rel_path", sa.Text(), nullable=False),
        sa.Column("file_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["root_id"], ["roots.id"], name=op.f("fk_remote_dirs_root_id_roots"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("root_id", "rel_path", name=op.f("pk_remote_dirs")),
    )
    op.create_table(
        "upload_slices",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("slice_no", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key"],
            ["upload_sessions.key"],
            name=op.f("fk_upload_slices_key_upload_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", "slice_no", name=op.f("pk_upload_slices")),
    )


def downgrade() -> None:

    op.drop_table("upload_slices")
    op.drop_table("remote_dirs")
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.drop_index("ix_files_state_next")
        batch_op.drop_index("ix_files_dev_inode")

    op.drop_table("files")
    op.drop_table("upload_sessions")
    op.drop_table("roots")
    op.drop_table("passes")
    op.drop_table("kv")
