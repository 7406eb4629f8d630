"""closed days are immutable: database triggers

Sales (vends) and cash entries covered by a day closing (closing_id set) can no longer be updated
or deleted, and no sale is ever deleted. The service layer checks this too (dayclose.ensure_not_closed)
with a friendlier message; the triggers make sure nothing else (a script, a psql session) can
rewrite a closed day. See docs/decisions/0007-receipt-numbering-and-day-closing.md.

Note for later migrations: on SQLite a batch_alter_table that recreates ``vends`` or
``cash_entries`` drops these triggers with the old table; such a migration must create them again
(tests/integration/test_dayclose.py fails if they are missing at head).

Revision ID: 0004
Revises: 0003
"""
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

CLOSED_MSG = "row was closed in a day closing; it can no longer change"
NO_DELETE_MSG = "no sale is ever deleted"

SQLITE_UP = [
    f"""CREATE TRIGGER trg_vends_closed_no_update BEFORE UPDATE ON vends
        FOR EACH ROW WHEN OLD.closing_id IS NOT NULL
        BEGIN SELECT RAISE(ABORT, 'vends {CLOSED_MSG}'); END""",
    f"""CREATE TRIGGER trg_vends_no_delete BEFORE DELETE ON vends
        FOR EACH ROW
        BEGIN SELECT RAISE(ABORT, '{NO_DELETE_MSG}'); END""",
    f"""CREATE TRIGGER trg_cash_entries_closed_no_update BEFORE UPDATE ON cash_entries
        FOR EACH ROW WHEN OLD.closing_id IS NOT NULL
        BEGIN SELECT RAISE(ABORT, 'cash_entries {CLOSED_MSG}'); END""",
    f"""CREATE TRIGGER trg_cash_entries_closed_no_delete BEFORE DELETE ON cash_entries
        FOR EACH ROW WHEN OLD.closing_id IS NOT NULL
        BEGIN SELECT RAISE(ABORT, 'cash_entries {CLOSED_MSG}'); END""",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS trg_cash_entries_closed_no_delete",
    "DROP TRIGGER IF EXISTS trg_cash_entries_closed_no_update",
    "DROP TRIGGER IF EXISTS trg_vends_no_delete",
    "DROP TRIGGER IF EXISTS trg_vends_closed_no_update",
]

# restrict_violation (SQLSTATE 23001) so drivers report it as an integrity error, like SQLite's
# RAISE(ABORT) (SQLITE_CONSTRAINT)
PG_UP = [
    f"""CREATE FUNCTION dbmis_refuse_closed_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% % (id %, day closing %)', TG_TABLE_NAME, '{CLOSED_MSG}',
                OLD.id, OLD.closing_id USING ERRCODE = 'restrict_violation';
        END $$""",
    f"""CREATE FUNCTION dbmis_refuse_sale_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '{NO_DELETE_MSG} (vend id %)', OLD.id
                USING ERRCODE = 'restrict_violation';
        END $$""",
    """CREATE TRIGGER trg_vends_closed_no_update BEFORE UPDATE ON vends
        FOR EACH ROW WHEN (OLD.closing_id IS NOT NULL)
        EXECUTE FUNCTION dbmis_refuse_closed_change()""",
    """CREATE TRIGGER trg_vends_no_delete BEFORE DELETE ON vends
        FOR EACH ROW EXECUTE FUNCTION dbmis_refuse_sale_delete()""",
    """CREATE TRIGGER trg_cash_entries_closed_no_update BEFORE UPDATE ON cash_entries
        FOR EACH ROW WHEN (OLD.closing_id IS NOT NULL)
        EXECUTE FUNCTION dbmis_refuse_closed_change()""",
    """CREATE TRIGGER trg_cash_entries_closed_no_delete BEFORE DELETE ON cash_entries
        FOR EACH ROW WHEN (OLD.closing_id IS NOT NULL)
        EXECUTE FUNCTION dbmis_refuse_closed_change()""",
]
PG_DOWN = [
    "DROP TRIGGER IF EXISTS trg_cash_entries_closed_no_delete ON cash_entries",
    "DROP TRIGGER IF EXISTS trg_cash_entries_closed_no_update ON cash_entries",
    "DROP TRIGGER IF EXISTS trg_vends_no_delete ON vends",
    "DROP TRIGGER IF EXISTS trg_vends_closed_no_update ON vends",
    "DROP FUNCTION IF EXISTS dbmis_refuse_sale_delete()",
    "DROP FUNCTION IF EXISTS dbmis_refuse_closed_change()",
]


def _run(statements) -> None:
    for sql in statements:
        op.execute(sql)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _run(PG_UP)
    else:
        _run(SQLITE_UP)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _run(PG_DOWN)
    else:
        _run(SQLITE_DOWN)
