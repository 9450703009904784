"""lesson: lessons leaders share, and their full-text search index

Revision ID: 0019_lessons
Revises: 0018_checkin_reply
Create Date: 2026-12-03 19:00:00.000000

On SQLite the search index is an FTS5 table over the lesson rows (external content), kept in
step by triggers; on PostgreSQL a GIN index over the lesson's text as a tsvector. Neither is
part of the models: `storage.migrate.SEARCH_INDEX` names them for schema comparison.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import storage.types

revision: str = "0019_lessons"
down_revision: str | None = "0018_checkin_reply"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = "title, happened, takeaway, tag_text"
NEW = "new.title, new.happened, new.takeaway, new.tag_text"
OLD = "old.title, old.happened, old.takeaway, old.tag_text"
SQLITE = [
    "CREATE VIRTUAL TABLE lesson_search USING fts5("
    f"{COLUMNS}, content='lesson', content_rowid='id', tokenize='porter unicode61')",
    "CREATE TRIGGER lesson_search_ai AFTER INSERT ON lesson BEGIN "
    f"INSERT INTO lesson_search(rowid, {COLUMNS}) VALUES (new.id, {NEW}); END",
    "CREATE TRIGGER lesson_search_ad AFTER DELETE ON lesson BEGIN "
    f"INSERT INTO lesson_search(lesson_search, rowid, {COLUMNS}) "
    f"VALUES ('delete', old.id, {OLD}); END",
    "CREATE TRIGGER lesson_search_au AFTER UPDATE ON lesson BEGIN "
    f"INSERT INTO lesson_search(lesson_search, rowid, {COLUMNS}) "
    f"VALUES ('delete', old.id, {OLD}); "
    f"INSERT INTO lesson_search(rowid, {COLUMNS}) VALUES (new.id, {NEW}); END",
]
POSTGRES = (
    "CREATE INDEX lesson_search_gin ON lesson USING gin (to_tsvector('english', "
    "title || ' ' || happened || ' ' || takeaway || ' ' || tag_text))"
)


def upgrade() -> None:
    op.create_table(
        "lesson",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.Column("source_key", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=True),
        sa.Column("named", sa.Boolean(), nullable=False),
        sa.Column("author_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("author_hash", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("happened", sa.Text(), nullable=False),
        sa.Column("takeaway", sa.Text(), nullable=False),
        sa.Column("theme", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.Column("activity_type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("tag_text", sa.Text(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["contract_id"], ["contract.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("lesson", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lesson_author_hash"), ["author_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_lesson_author_id"), ["author_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lesson_contract_id"), ["contract_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lesson_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_lesson_source_key"), ["source_key"], unique=True)
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE:
            op.execute(statement)
    else:
        op.execute(POSTGRES)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("lesson_search_ai", "lesson_search_ad", "lesson_search_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS lesson_search")
    else:
        op.execute("DROP INDEX IF EXISTS lesson_search_gin")
    with op.batch_alter_table("lesson", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lesson_source_key"))
        batch_op.drop_index(batch_op.f("ix_lesson_created_at"))
        batch_op.drop_index(batch_op.f("ix_lesson_contract_id"))
        batch_op.drop_index(batch_op.f("ix_lesson_author_id"))
        batch_op.drop_index(batch_op.f("ix_lesson_author_hash"))
    op.drop_table("lesson")
