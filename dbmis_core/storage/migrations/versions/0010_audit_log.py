"""audit log: append-only, hash-chained per station (docs/decisions/0015-audit-log.md)

Triggers refuse UPDATE and DELETE on ``audit_log`` on both backends. Archiving (services/archive.py)
never touches this table, so nothing ever lifts them.

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa
import dbmis_core.storage.models


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

MSG = "the audit log is append only"

SQLITE_UP = [
    f"""CREATE TRIGGER trg_audit_log_no_update BEFORE UPDATE ON audit_log
        FOR EACH ROW BEGIN SELECT RAISE(ABORT, '{MSG}'); END""",
    f"""CREATE TRIGGER trg_audit_log_no_delete BEFORE DELETE ON audit_log
        FOR EACH ROW BEGIN SELECT RAISE(ABORT, '{MSG}'); END""",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS trg_audit_log_no_delete",
    "DROP TRIGGER IF EXISTS trg_audit_log_no_update",
]
# restrict_violation, as migration 0004: drivers report it as an integrity error
PG_UP = [
    f"""CREATE FUNCTION dbmis_refuse_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '{MSG} (% refused on record %)', TG_OP, OLD.id
                USING ERRCODE = 'restrict_violation';
        END $$""",
    """CREATE TRIGGER trg_audit_log_no_update BEFORE UPDATE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION dbmis_refuse_audit_change()""",
    """CREATE TRIGGER trg_audit_log_no_delete BEFORE DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION dbmis_refuse_audit_change()""",
    # TRUNCATE bypasses row triggers
    """CREATE TRIGGER trg_audit_log_no_truncate BEFORE TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION dbmis_refuse_audit_truncate()""",
]
PG_TRUNCATE_FN = f"""CREATE FUNCTION dbmis_refuse_audit_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '{MSG} (TRUNCATE refused)' USING ERRCODE = 'restrict_violation';
        END $$"""
PG_DOWN = [
    "DROP TRIGGER IF EXISTS trg_audit_log_no_truncate ON audit_log",
    "DROP TRIGGER IF EXISTS trg_audit_log_no_delete ON audit_log",
    "DROP TRIGGER IF EXISTS trg_audit_log_no_update ON audit_log",
    "DROP FUNCTION IF EXISTS dbmis_refuse_audit_truncate()",
    "DROP FUNCTION IF EXISTS dbmis_refuse_audit_change()",
]


def upgrade() -> None:
    with op.batch_alter_table('stations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('audit_seq', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('audit_head', sa.String(length=64), server_default='', nullable=False))

    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('station', sa.String(length=16), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('at', dbmis_core.storage.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('operator', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.String(length=120), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log')),
    sa.UniqueConstraint('station', 'seq', name='uq_audit_log_station_seq')
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_at', ['at'], unique=False)
        batch_op.create_index('ix_audit_log_kind_at', ['kind', 'at'], unique=False)
        batch_op.create_index('ix_audit_log_operator_at', ['operator', 'at'], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_TRUNCATE_FN)
        for sql in PG_UP:
            op.execute(sql)
    else:
        for sql in SQLITE_UP:
            op.execute(sql)


def downgrade() -> None:
    for sql in (PG_DOWN if op.get_bind().dialect.name == "postgresql" else SQLITE_DOWN):
        op.execute(sql)
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_operator_at')
        batch_op.drop_index('ix_audit_log_kind_at')
        batch_op.drop_index('ix_audit_log_at')
    op.drop_table('audit_log')
    with op.batch_alter_table('stations', schema=None) as batch_op:
        batch_op.drop_column('audit_head')
        batch_op.drop_column('audit_seq')
