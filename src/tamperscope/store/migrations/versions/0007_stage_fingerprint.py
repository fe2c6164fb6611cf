"""stage_runs.fingerprint: whether a stored stage result is current, as one hash

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 11:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("stage_runs", sa.Column("fingerprint", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stage_runs") as batch:
        batch.drop_column("fingerprint")
