"""settings and maintenance data: system parameters, code tables (customer categories,
manufacturers, payment methods; regions.active, meter_models.manufacturer_code), meter store
history (meter_events) and personnel records

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa
import dbmis_core.storage.models


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def _code_table(name: str, *extra: sa.Column) -> None:
    op.create_table(name,
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    *extra,
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{name}')),
    sa.UniqueConstraint('code', name=op.f(f'uq_{name}_code'))
    )


def upgrade() -> None:
    op.create_table('settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=48), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.Column('updated_by', sa.String(length=32), nullable=False),
    sa.Column('updated_at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settings')),
    sa.UniqueConstraint('name', name=op.f('uq_settings_name'))
    )
    op.create_table('settings_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settings_version'))
    )
    op.execute("INSERT INTO settings_version (id, version) VALUES (1, 0)")
    _code_table('customer_categories')
    _code_table('manufacturers', sa.Column('country', sa.String(length=60), nullable=False))
    _code_table('payment_methods')
    op.create_table('meter_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meter_id', sa.Integer(), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('operator', sa.String(length=32), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['meter_id'], ['meters.id'], name=op.f('fk_meter_events_meter_id_meters')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meter_events'))
    )
    with op.batch_alter_table('meter_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meter_events_meter_id'), ['meter_id'], unique=False)
    op.create_table('personnel',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('employee_no', sa.String(length=24), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('title', sa.String(length=80), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('operator_login', sa.String(length=32), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_personnel')),
    sa.UniqueConstraint('employee_no', name=op.f('uq_personnel_employee_no'))
    )
    # plain ADD COLUMN (no table rebuild: meters and customers refer to these tables)
    op.add_column('regions', sa.Column('active', sa.Boolean(), server_default=sa.text('true'),
                                       nullable=False))
    op.add_column('meter_models', sa.Column('manufacturer_code', sa.String(length=32),
                                            nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('meter_models', schema=None) as batch_op:
        batch_op.drop_column('manufacturer_code')
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.drop_column('active')
    op.drop_table('personnel')
    with op.batch_alter_table('meter_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_meter_events_meter_id'))
    op.drop_table('meter_events')
    op.drop_table('payment_methods')
    op.drop_table('manufacturers')
    op.drop_table('customer_categories')
    op.drop_table('settings_version')
    op.drop_table('settings')
