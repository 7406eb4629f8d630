"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 02:18:52.386788
"""
from alembic import op
import sqlalchemy as sa
import dbmis_core.storage.models


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('meter_models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('constant', sa.Integer(), nullable=False),
    sa.Column('phases', sa.Integer(), nullable=False),
    sa.Column('rated_amps', sa.Numeric(precision=8, scale=2), nullable=False),
    sa.Column('credit_unit', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meter_models')),
    sa.UniqueConstraint('code', name=op.f('uq_meter_models_code'))
    )
    op.create_table('operators',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('login', sa.String(length=32), nullable=False),
    sa.Column('full_name', sa.String(length=120), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operators')),
    sa.UniqueConstraint('login', name=op.f('uq_operators_login'))
    )
    op.create_table('regions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['parent_id'], ['regions.id'], name=op.f('fk_regions_parent_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_regions')),
    sa.UniqueConstraint('code', name=op.f('uq_regions_code'))
    )
    op.create_table('stations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('next_receipt', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stations')),
    sa.UniqueConstraint('code', name=op.f('uq_stations_code'))
    )
    op.create_table('utilities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('numeric_code', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_utilities')),
    sa.UniqueConstraint('code', name=op.f('uq_utilities_code'))
    )
    op.create_table('customers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_no', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('address', sa.String(length=255), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('district_id', sa.Integer(), nullable=True),
    sa.Column('created_at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['district_id'], ['regions.id'], name=op.f('fk_customers_district_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customers')),
    sa.UniqueConstraint('account_no', name=op.f('uq_customers_account_no'))
    )
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customers_name'), ['name'], unique=False)

    op.create_table('meters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meter_no', sa.String(length=12), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('last_sequence', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_meters_customer_id_customers')),
    sa.ForeignKeyConstraint(['model_id'], ['meter_models.id'], name=op.f('fk_meters_model_id_meter_models')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meters')),
    sa.UniqueConstraint('meter_no', name=op.f('uq_meters_meter_no'))
    )
    with op.batch_alter_table('meters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meters_customer_id'), ['customer_id'], unique=False)

    op.create_table('cards',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=32), nullable=False),
    sa.Column('card_type', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('meter_id', sa.Integer(), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('key_version', sa.Integer(), nullable=False),
    sa.Column('issued_by', sa.String(length=32), nullable=False),
    sa.Column('issued_at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_cards_customer_id_customers')),
    sa.ForeignKeyConstraint(['meter_id'], ['meters.id'], name=op.f('fk_cards_meter_id_meters')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cards')),
    sa.UniqueConstraint('uid', name=op.f('uq_cards_uid'))
    )
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cards_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cards_meter_id'), ['meter_id'], unique=False)

    op.create_table('meter_returns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meter_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('last_sequence', sa.Integer(), nullable=False),
    sa.Column('remaining', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('cumulative_purchased', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('cumulative_consumed', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('consumed_since_previous', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('tamper_count', sa.Integer(), nullable=False),
    sa.Column('illegal_card_count', sa.Integer(), nullable=False),
    sa.Column('history_year', sa.Integer(), nullable=False),
    sa.Column('history_month', sa.Integer(), nullable=False),
    sa.Column('history', sa.JSON(), nullable=False),
    sa.Column('written_at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('read_at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('read_by', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_meter_returns_customer_id_customers')),
    sa.ForeignKeyConstraint(['meter_id'], ['meters.id'], name=op.f('fk_meter_returns_meter_id_meters')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meter_returns')),
    sa.UniqueConstraint('meter_id', 'written_at', name='uq_meter_returns_meter_written')
    )
    with op.batch_alter_table('meter_returns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meter_returns_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_meter_returns_meter_id'), ['meter_id'], unique=False)

    op.create_table('vends',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('meter_id', sa.Integer(), nullable=False),
    sa.Column('card_id', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('energy', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('credit', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('credit_unit', sa.Integer(), nullable=False),
    sa.Column('tariff', sa.String(length=40), nullable=False),
    sa.Column('unit_price', sa.Numeric(precision=12, scale=4), nullable=False),
    sa.Column('price_lines', sa.JSON(), nullable=False),
    sa.Column('operator', sa.String(length=32), nullable=False),
    sa.Column('station', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('issued_at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('created_at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('written_at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('completed_at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('receipt_no', sa.String(length=32), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['card_id'], ['cards.id'], name=op.f('fk_vends_card_id_cards')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_vends_customer_id_customers')),
    sa.ForeignKeyConstraint(['meter_id'], ['meters.id'], name=op.f('fk_vends_meter_id_meters')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vends')),
    sa.UniqueConstraint('receipt_no', name=op.f('uq_vends_receipt_no'))
    )
    with op.batch_alter_table('vends', schema=None) as batch_op:
        batch_op.create_index('ix_vends_customer_created', ['customer_id', 'created_at'], unique=False)
        batch_op.create_index('ix_vends_state', ['state'], unique=False)
        batch_op.create_index('uq_vends_meter_sequence_live', ['meter_id', 'sequence'], unique=True, sqlite_where=sa.text("state != 'failed'"), postgresql_where=sa.text("state != 'failed'"))



def downgrade() -> None:
    with op.batch_alter_table('vends', schema=None) as batch_op:
        batch_op.drop_index('uq_vends_meter_sequence_live', sqlite_where=sa.text("state != 'failed'"), postgresql_where=sa.text("state != 'failed'"))
        batch_op.drop_index('ix_vends_state')
        batch_op.drop_index('ix_vends_customer_created')

    op.drop_table('vends')
    with op.batch_alter_table('meter_returns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_meter_returns_meter_id'))
        batch_op.drop_index(batch_op.f('ix_meter_returns_customer_id'))

    op.drop_table('meter_returns')
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cards_meter_id'))
        batch_op.drop_index(batch_op.f('ix_cards_customer_id'))

    op.drop_table('cards')
    with op.batch_alter_table('meters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_meters_customer_id'))

    op.drop_table('meters')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customers_name'))

    op.drop_table('customers')
    op.drop_table('utilities')
    op.drop_table('stations')
    op.drop_table('regions')
    op.drop_table('operators')
    op.drop_table('meter_models')
