"""repair feedback.request_id links that SQLite table rebuilds set to NULL

Revision ID: 0007_repair_feedback_links
Revises: 0003_feedback
Create Date: 2026-11-25 08:00:00

Up to this release, SQLite migrations ran with foreign keys on, so the batch rebuild of
`feedback_request` in 0003 (up and down) dropped the table under `feedback`, and
`ON DELETE SET NULL` cut every answer from its request. An attributed answer can be found
again: answering an open request stores the feedback and closes the request in one write
with the same `now`, so the request was asked of the author, on the same contract, is
`answered`, and its `closed_at` is the feedback's `created_at` to the microsecond. A link is
restored only when that match is one to one. Not restored, because nothing recorded them:
a second answer to an already answered request (it did not close it). Anonymous answers
were never linked, by design (their requests keep only an unlinkable mark).
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_repair_feedback_links"
down_revision: str | None = "0003_feedback"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

logger = logging.getLogger(__name__)

feedback = sa.table(
    "feedback",
    sa.column("id", sa.Integer),
    sa.column("contract_id", sa.Integer),
    sa.column("author_id", sa.String),
    sa.column("anonymous", sa.Boolean),
    sa.column("created_at", sa.DateTime),
    sa.column("request_id", sa.Integer),
)
feedback_request = sa.table(
    "feedback_request",
    sa.column("id", sa.Integer),
    sa.column("contract_id", sa.Integer),
    sa.column("reviewer_id", sa.String),
    sa.column("status", sa.String),
    sa.column("closed_at", sa.DateTime),
)


def upgrade() -> None:
    request = feedback_request.alias("answered")
    same = feedback.alias("same")
    closed_by_it = sa.and_(
        request.c.contract_id == feedback.c.contract_id,
        request.c.reviewer_id == feedback.c.author_id,
        request.c.status == "answered",
        request.c.closed_at == feedback.c.created_at,
    )
    # No other attributed entry of the same author, contract and instant: one to one.
    alone = sa.and_(
        same.c.contract_id == feedback.c.contract_id,
        same.c.author_id == feedback.c.author_id,
        same.c.created_at == feedback.c.created_at,
        same.c.anonymous == sa.false(),
    )
    count = sa.func.count()
    repaired = op.get_bind().execute(
        sa.update(feedback)
        .where(
            feedback.c.request_id.is_(None),
            feedback.c.anonymous == sa.false(),
            feedback.c.author_id.is_not(None),
            sa.select(count).select_from(request).where(closed_by_it).scalar_subquery() == 1,
            sa.select(count).select_from(same).where(alone).scalar_subquery() == 1,
        )
        .values(request_id=sa.select(request.c.id).where(closed_by_it).scalar_subquery())
    )
    if repaired.rowcount:
        logger.info("Relinked %d feedback entries to the requests they answered", repaired.rowcount)


def downgrade() -> None:
    # The links are right at 0003 too: nothing to undo.
    pass
