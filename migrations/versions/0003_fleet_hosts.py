"""a fleet on one ledger: hosts, and each root and pass belongs to one

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 01:00:00.000000

``hosts`` holds every agent that uses the ledger (a stable ID kept in its state dir, a
readable name, first and last seen). A root is now identified by (host, local path): two
hosts that both back up ``/data`` have a root each. Roots and passes made before this
revision have no host: the first host that opens the ledger claims them (a ledger made by one
agent is that agent's).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hosts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.Float(), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hosts")),
    )
    with op.batch_alter_table("roots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("host_id", sa.String(length=64), nullable=True))
        batch_op.drop_constraint("uq_roots_local_path", type_="unique")
        batch_op.create_unique_constraint(op.f("uq_roots_host_id"), ["host_id", "local_path"])
        batch_op.create_foreign_key(
            op.f("fk_roots_host_id_hosts"), "hosts", ["host_id"], ["id"], ondelete="CASCADE"
        )
    with op.batch_alter_table("passes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("host_id", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_passes_host_id", ["host_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("passes", schema=None) as batch_op:
        batch_op.drop_index("ix_passes_host_id")
        batch_op.drop_column("host_id")
    with op.batch_alter_table("roots", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_roots_host_id_hosts"), type_="foreignkey")
        batch_op.drop_constraint(op.f("uq_roots_host_id"), type_="unique")
        batch_op.create_unique_constraint(op.f("uq_roots_local_path"), ["local_path"])
        batch_op.drop_column("host_id")
    op.drop_table("hosts")
