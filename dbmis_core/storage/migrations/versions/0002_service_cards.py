"""service cards

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 02:52:16.624505
"""
from alembic import op
import sqlalchemy as sa
import dbmis_core.storage.models


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('meter_parameter_sets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=32), nullable=False),
    sa.Column('created_at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meter_parameter_sets')),
    sa.UniqueConstraint('version', name=op.f('uq_meter_parameter_sets_version'))
    )
    op.create_table('service_cards',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=32), nullable=False),
    sa.Column('card_type', sa.Integer(), nullable=False),
    sa.Column('operator', sa.String(length=32), nullable=False),
    sa.Column('station', sa.String(length=16), nullable=False),
    sa.Column('written_at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('targets', sa.JSON(), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('key_version', sa.Integer(), nullable=False),
    sa.Column('imported_at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('imported_by', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_cards')),
    sa.UniqueConstraint('uid', name=op.f('uq_service_cards_uid'))
    )
    with op.batch_alter_table('service_cards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_cards_written_at'), ['written_at'], unique=False)

    with op.batch_alter_table('meter_returns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=16), server_default='user', nullable=False))

    with op.batch_alter_table('meters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parameter_version', sa.Integer(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('meters', schema=None) as batch_op:
        batch_op.drop_column('parameter_version')

    with op.batch_alter_table('meter_returns', schema=None) as batch_op:
        batch_op.drop_column('source')

    with op.batch_alter_table('service_cards', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_cards_written_at'))

    op.drop_table('service_cards')
    op.drop_table('meter_parameter_sets')
