"""a reversed sale releases its sequence

The partial unique index on (meter, sequence) ignored only failed sales; a reversed sale (credit
taken back off the card before the meter loaded it, docs/decisions/0008-reversal-and-reissue.md)
releases its sequence too, so the next sale to that meter reuses it. Index drop and create only:
the ``vends`` table (and the triggers of 0004 on it) stays as it is.

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

INDEX = "uq_vends_meter_sequence_live"


def _create(predicate: str) -> None:
    op.create_index(INDEX, "vends", ["meter_id", "sequence"], unique=True,
                    sqlite_where=sa.text(predicate), postgresql_where=sa.text(predicate))


def upgrade() -> None:
    op.drop_index(INDEX, table_name="vends")
    _create("state NOT IN ('failed', 'reversed')")


def downgrade() -> None:
    op.drop_index(INDEX, table_name="vends")
    _create("state != 'failed'")
