"""operator security: lockout counters, forced change, password history, preferences, events

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa
import dbmis_core.storage.models


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('operators', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed_attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('locked_until', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(), server_default=sa.text('false'), nullable=False))
        batch_op.add_column(sa.Column('password_changed_at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('password_history', sa.JSON(), server_default='[]', nullable=False))

    op.create_table('operator_preferences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('operator_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('text_value', sa.String(length=255), nullable=False),
    sa.Column('blob_value', sa.LargeBinary(), nullable=True),
    sa.Column('updated_at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], name=op.f('fk_operator_preferences_operator_id_operators')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operator_preferences')),
    sa.UniqueConstraint('operator_id', 'name', name=op.f('uq_operator_preferences_operator_id'))
    )
    op.create_table('operator_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('login', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('by_login', sa.String(length=32), nullable=True),
    sa.Column('station', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operator_events'))
    )
    with op.batch_alter_table('operator_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_operator_events_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_operator_events_login'), ['login'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('operator_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_operator_events_login'))
        batch_op.drop_index(batch_op.f('ix_operator_events_at'))
    op.drop_table('operator_events')
    op.drop_table('operator_preferences')
    with op.batch_alter_table('operators', schema=None) as batch_op:
        batch_op.drop_column('password_history')
        batch_op.drop_column('password_changed_at')
        batch_op.drop_column('must_change_password')
        batch_op.drop_column('locked_until')
        batch_op.drop_column('failed_attempts')
