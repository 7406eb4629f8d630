"""meters remember the card key version they were keyed with

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('meters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_version', sa.Integer(), nullable=True))
    # meters that already have cards were keyed with their cards' version
    op.execute("UPDATE meters SET key_version = (SELECT MIN(cards.key_version) FROM cards "
               "WHERE cards.meter_id = meters.id)")


def downgrade() -> None:
    with op.batch_alter_table('meters', schema=None) as batch_op:
        batch_op.drop_column('key_version')
