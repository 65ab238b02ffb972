"""bind each root to a 123pan account (API base, client ID, uid)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 06:40:00.000000

Rows of a root made before this revision have no binding: the first pass after the upgrade
checks them against the remote (and adopts what matches) before trusting them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("roots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("api_base", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("client_id", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("account_uid", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("roots", schema=None) as batch_op:
        batch_op.drop_column("account_uid")
        batch_op.drop_column("client_id")
        batch_op.drop_column("api_base")
