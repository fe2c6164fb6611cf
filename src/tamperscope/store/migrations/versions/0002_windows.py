"""clip windows

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 07:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "windows",
        sa.Column("window_id", sa.String(length=128), nullable=False),
        sa.Column("asset_id", sa.String(length=64), nullable=False),
        sa.Column("shot_id", sa.String(length=96), nullable=True),
        sa.Column("track_id", sa.Integer(), nullable=True),
        sa.Column("t_start_ms", sa.BigInteger(), nullable=False),
        sa.Column("t_end_ms", sa.BigInteger(), nullable=False),
        sa.Column("frame_ids_json", sa.JSON(), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.asset_id"]),
        sa.ForeignKeyConstraint(["shot_id"], ["shots.shot_id"]),
        sa.PrimaryKeyConstraint("window_id"),
    )
    with op.batch_alter_table("windows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_windows_asset_id"), ["asset_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("windows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_windows_asset_id"))
    op.drop_table("windows")
