"""drop two indexes every sale paid for and no query needs: ix_vends_state (the report index
ix_vends_completed_report starts with state) and ix_meter_returns_meter_id
(uq_meter_returns_meter_written starts with meter_id)

Revision ID: 0012
Revises: 0011
"""
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('vends', schema=None) as batch_op:
        batch_op.drop_index('ix_vends_state')
    with op.batch_alter_table('meter_returns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_meter_returns_meter_id'))


def downgrade() -> None:
    with op.batch_alter_table('meter_returns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meter_returns_meter_id'), ['meter_id'], unique=False)
    with op.batch_alter_table('vends', schema=None) as batch_op:
        batch_op.create_index('ix_vends_state', ['state'], unique=False)
