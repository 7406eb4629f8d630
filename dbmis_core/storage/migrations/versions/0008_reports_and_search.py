"""reports and search: master meter readings, sales summary, covering index for sales reports, text search
(SQLite FTS5 trigram table customers_fts kept by triggers; PostgreSQL pg_trgm GIN indexes)

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa
import dbmis_core.storage.models


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

TRGM_COLUMNS = ("name", "address", "phone")


def upgrade() -> None:
    op.create_table('master_meter_readings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('month', sa.Integer(), nullable=False),
    sa.Column('supplied', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('entered_by', sa.String(length=32), nullable=False),
    sa.Column('entered_at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['region_id'], ['regions.id'], name=op.f('fk_master_meter_readings_region_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_master_meter_readings')),
    sa.UniqueConstraint('region_id', 'year', 'month', name='uq_master_meter_readings_region_month')
    )
    op.create_table('sales_summary',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('month', sa.Integer(), nullable=False),
    sa.Column('district_id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('sales', sa.Integer(), nullable=False),
    sa.Column('customers', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('energy', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('debt_recovered', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales_summary')),
    sa.UniqueConstraint('year', 'month', 'district_id', 'category', name='uq_sales_summary_cell')
    )
    op.create_table('sales_customer_month',
    sa.Column('customer_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('month', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('sales', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('customer_id', 'year', 'month', name=op.f('pk_sales_customer_month'))
    )
    op.create_table('sales_summary_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('vend_watermark', sa.Integer(), nullable=False),
    sa.Column('reversal_watermark', sa.Integer(), nullable=False),
    sa.Column('open_vends', sa.JSON(), nullable=False),
    sa.Column('open_reversals', sa.JSON(), nullable=False),
    sa.Column('refreshed_at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales_summary_state'))
    )
    with op.batch_alter_table('vends', schema=None) as batch_op:
        batch_op.create_index('ix_vends_completed_report', ['state', 'kind', 'completed_at', 'customer_id', 'amount', 'energy', 'debt_recovered'], unique=False)

    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE customers_fts USING fts5(name, address, phone, "
                   "content='customers', content_rowid='id', tokenize='trigram')")
        op.execute("INSERT INTO customers_fts(rowid, name, address, phone) "
                   "SELECT id, name, address, phone FROM customers")
        op.execute("CREATE TRIGGER customers_fts_ai AFTER INSERT ON customers BEGIN "
                   "INSERT INTO customers_fts(rowid, name, address, phone) "
                   "VALUES (new.id, new.name, new.address, new.phone); END")
        op.execute("CREATE TRIGGER customers_fts_ad AFTER DELETE ON customers BEGIN "
                   "INSERT INTO customers_fts(customers_fts, rowid, name, address, phone) "
                   "VALUES ('delete', old.id, old.name, old.address, old.phone); END")
        op.execute("CREATE TRIGGER customers_fts_au AFTER UPDATE OF name, address, phone "
                   "ON customers BEGIN "
                   "INSERT INTO customers_fts(customers_fts, rowid, name, address, phone) "
                   "VALUES ('delete', old.id, old.name, old.address, old.phone); "
                   "INSERT INTO customers_fts(rowid, name, address, phone) "
                   "VALUES (new.id, new.name, new.address, new.phone); END")
    elif op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for col in TRGM_COLUMNS:
            op.execute(f"CREATE INDEX ix_customers_{col}_trgm ON customers "
                       f"USING gin ({col} gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trig in ("customers_fts_ai", "customers_fts_ad", "customers_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trig}")
        op.execute("DROP TABLE IF EXISTS customers_fts")
    elif op.get_bind().dialect.name == "postgresql":
        for col in TRGM_COLUMNS:
            op.execute(f"DROP INDEX IF EXISTS ix_customers_{col}_trgm")
    with op.batch_alter_table('vends', schema=None) as batch_op:
        batch_op.drop_index('ix_vends_completed_report')
    op.drop_table('sales_summary_state')
    op.drop_table('sales_customer_month')
    op.drop_table('sales_summary')
    op.drop_table('master_meter_readings')
