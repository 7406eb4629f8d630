"""user management: monthly consumption and inspection work orders

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa
import dbmis_core.storage.models


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('monthly_consumption',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('meter_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('month', sa.Integer(), nullable=False),
    sa.Column('kwh', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('purchased', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('returns', sa.Integer(), nullable=False),
    sa.Column('status_bits', sa.Integer(), nullable=False),
    sa.Column('tamper_count', sa.Integer(), nullable=True),
    sa.Column('illegal_card_count', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('quality', sa.String(length=16), nullable=False),
    sa.Column('flags', sa.Integer(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('computed_at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_monthly_consumption_customer_id_customers')),
    sa.ForeignKeyConstraint(['meter_id'], ['meters.id'], name=op.f('fk_monthly_consumption_meter_id_meters')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_monthly_consumption')),
    sa.UniqueConstraint('customer_id', 'meter_id', 'year', 'month', name='uq_monthly_consumption_customer_meter_month')
    )
    with op.batch_alter_table('monthly_consumption', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_monthly_consumption_customer_id'), ['customer_id'], unique=False)

    op.create_table('work_orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('meter_id', sa.Integer(), nullable=True),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=True),
    sa.Column('period_year', sa.Integer(), nullable=True),
    sa.Column('period_month', sa.Integer(), nullable=True),
    sa.Column('score', sa.Numeric(precision=8, scale=3), nullable=True),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('assigned_to', sa.String(length=32), nullable=True),
    sa.Column('assigned_at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=32), nullable=False),
    sa.Column('created_at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('closed_by', sa.String(length=32), nullable=True),
    sa.Column('closed_at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_work_orders_customer_id_customers')),
    sa.ForeignKeyConstraint(['meter_id'], ['meters.id'], name=op.f('fk_work_orders_meter_id_meters')),
    sa.ForeignKeyConstraint(['notice_id'], ['inspection_notices.id'], name=op.f('fk_work_orders_notice_id_inspection_notices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_work_orders'))
    )
    with op.batch_alter_table('work_orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_work_orders_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_work_orders_status'), ['status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('work_orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_work_orders_status'))
        batch_op.drop_index(batch_op.f('ix_work_orders_customer_id'))
    op.drop_table('work_orders')
    with op.batch_alter_table('monthly_consumption', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_monthly_consumption_customer_id'))
    op.drop_table('monthly_consumption')
