"""contract_history and chart_set: a summary's charts known unchanged without their points

Revision ID: 0027_chart_history
Revises: 0026_rater_groups
Create Date: 2026-12-06 02:50:00.000000

`contract_history` holds a number per contract that triggers bump on every insert, update or
delete of a row its charts draw: the contract's own row, its indicators, milestones,
measurements and check-ins. It is a row of its own, not a column of `contract`, so that the
writers of those tables never wait on (or rewrite) the contract's row; it has no foreign key,
so that a contract's deletion, which deletes its children and fires their triggers, never
meets it. On PostgreSQL the triggers run at commit (deferred constraint triggers): the
number's row is locked last, after whatever else the writer holds, so that writers of one
contract wait for each other there and never deadlock. SQLite has one writer at a time.

`chart_set` keeps, by contract and that number, which charts were drawn (subject, title, alt
text, hash of the data): a summary of an unchanged history shows its charts from it and
`chart_file`, without reading a point.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0027_chart_history"
down_revision: str | None = "0026_rater_groups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each table a chart draws from, and how a row of it names its contract (NEW. or OLD.).
SOURCES = {
    "contract": "{row}.id",
    "success_indicator": "{row}.contract_id",
    "milestone": "{row}.contract_id",
    "checkin": "{row}.contract_id",
    "measurement": "(SELECT contract_id FROM success_indicator WHERE id = {row}.indicator_id)",
}
EVENTS = ("insert", "update", "delete", "moved")  # SQLite's triggers of each table

# One statement bumps (or starts) a contract's number; a contract not found (a measurement
# whose indicator is already gone) bumps nothing.
BUMP = (
    "INSERT INTO contract_history (contract_id, version) "
    "SELECT c, 1 FROM (SELECT {contract} AS c) AS found WHERE c IS NOT NULL "
    "ON CONFLICT (contract_id) DO UPDATE SET version = contract_history.version + 1"
)


def _sqlite_triggers() -> list[str]:
    statements = []
    for table, contract in SOURCES.items():
        old, new = contract.format(row="OLD"), contract.format(row="NEW")
        for event, found in (("insert", new), ("update", new), ("delete", old)):
            statements.append(
                f"CREATE TRIGGER history_{table}_{event} AFTER {event.upper()} ON {table} "
                f"BEGIN {BUMP.format(contract=found)}; END"
            )
        # A row moved to another contract changes the one it left as well.
        statements.append(
            f"CREATE TRIGGER history_{table}_moved AFTER UPDATE ON {table} "
            f"WHEN {old} IS NOT {new} BEGIN {BUMP.format(contract=old)}; END"
        )
    return statements


def _postgres_triggers() -> list[str]:
    statements = []
    for table, contract in SOURCES.items():
        old, new = contract.format(row="OLD"), contract.format(row="NEW")
        statements.append(
            f"CREATE FUNCTION history_{table}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF TG_OP IN ('INSERT', 'UPDATE') THEN {BUMP.format(contract=new)}; END IF; "
            f"IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND {old} IS DISTINCT FROM {new}) THEN "
            f"{BUMP.format(contract=old)}; END IF; "
            "RETURN NULL; END $$"
        )
        # Deferred to the commit: the number's row is the last lock a writer takes, so two
        # writers of one contract's rows (a milestone decided while an amendment moves it)
        # never hold one of those rows each while waiting for the number.
        statements.append(
            f"CREATE CONSTRAINT TRIGGER history_{table} "
            f"AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "DEFERRABLE INITIALLY DEFERRED "
            f"FOR EACH ROW EXECUTE FUNCTION history_{table}()"
        )
    return statements


def upgrade() -> None:
    op.create_table(
        "contract_history",
        sa.Column("contract_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("contract_id"),
    )
    op.create_table(
        "chart_set",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("history", sa.Integer(), nullable=False),
        sa.Column("drawing", sa.Integer(), nullable=False),
        sa.Column("charts", sa.JSON(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["contract_id"], ["contract.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("contract_id", "history", "drawing", name="uq_chart_set"),
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in _sqlite_triggers() if sqlite else _postgres_triggers():
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in SOURCES:
        if sqlite:
            for event in EVENTS:
                op.execute(f"DROP TRIGGER IF EXISTS history_{table}_{event}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS history_{table} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS history_{table}()")
    op.drop_table("chart_set")
    op.drop_table("contract_history")
