"""provenance status wide enough for remote_not_fetched

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    # SQLite does not enforce VARCHAR lengths, and rebuilding ``assets`` there (batch mode) fails on the foreign
    # keys that point at it once the table holds rows: only the other databases need the change.
    if not _sqlite():
        op.alter_column("assets", "provenance_status", existing_type=sa.String(length=16),
                        type_=sa.String(length=32))


def downgrade() -> None:
    if not _sqlite():
        op.alter_column("assets", "provenance_status", existing_type=sa.String(length=32),
                        type_=sa.String(length=16))
