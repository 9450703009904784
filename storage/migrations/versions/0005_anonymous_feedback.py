"""anonymous feedback: no per-request answer marks, random ids, no withdrawal trail

Revision ID: 0005_anonymous_feedback
Revises: 0010_slack_request
Create Date: 2026-12-02 09:00:00.000000

- `feedback_answer_mark` goes: it let a requester count anonymous answers per request, which
  named the anonymous reviewer whenever the others had answered by name.
- Anonymous feedback rows get random ids: sequential ids placed them between named entries
  whose times are exact. (New rows of either kind get random ids from the model.)
- The `feedback.withdrawn` audit events of anonymous entries go: they told the leader that
  feedback below the threshold had existed.
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0005_anonymous_feedback"
down_revision: str | None = "0010_slack_request"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RANDOM_ID_MAX = 2**31 - 2


def upgrade() -> None:
    op.drop_table("feedback_answer_mark")
    bind = op.get_bind()
    taken = {row[0] for row in bind.execute(sa.text("SELECT id FROM feedback"))}
    anonymous = [
        row[0]
        for row in bind.execute(
            sa.text("SELECT id FROM feedback WHERE anonymous = :yes").bindparams(yes=True)
        )
    ]
    for old in anonymous:
        new = secrets.randbelow(RANDOM_ID_MAX) + 1
        while new in taken:
            new = secrets.randbelow(RANDOM_ID_MAX) + 1
        taken.add(new)
        bind.execute(
            sa.text("UPDATE feedback SET id = :new WHERE id = :old").bindparams(new=new, old=old)
        )
    # Anonymous withdrawals were audited without an actor; named ones carry their author.
    bind.execute(
        sa.text("DELETE FROM audit_event WHERE action = 'feedback.withdrawn' AND actor_id IS NULL")
    )


def downgrade() -> None:
    op.create_table(
        "feedback_answer_mark",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mark", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mark"),
    )
