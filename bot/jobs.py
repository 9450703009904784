"""The scheduled jobs, listed here and only here: what `northstar run` schedules and
`northstar jobs run NAME` runs once. The order is the order the sandbox's clock runs them."""

from __future__ import annotations

from bot.checkins.jobs import checkins_job, reminders_job
from bot.contracts.jobs import agreements_job
from bot.delivery.jobs import deliveries_job
from bot.digest.jobs import digests_job
from bot.feedback.jobs import feedback_job
from bot.idempotency import forget_old_requests
from bot.milestones.jobs import milestones_job
from bot.renewal.jobs import contract_ends_job
from bot.report.jobs import reports_job
from bot.reviews.jobs import reviews_job
from bot.risks.jobs import risks_job
from bot.scheduler import Job

DELIVERIES_JOB = "deliveries"  # what a follower's handed-over messages wake on the leader

JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        Job(DELIVERIES_JOB, deliveries_job, every_seconds=60),
        Job("checkins", checkins_job, every_seconds=60),
        Job("reminders", reminders_job, every_seconds=60),
        Job("digests", digests_job, every_seconds=60),
        Job("requests", forget_old_requests, every_seconds=3600),
        Job("feedback", feedback_job, every_seconds=600),
        Job("milestones", milestones_job, every_seconds=3600),
        Job("contract_ends", contract_ends_job, every_seconds=3600),
        Job("reviews", reviews_job, every_seconds=600),
        Job("agreements", agreements_job, every_seconds=60),
        Job("risks", risks_job, every_seconds=3600),
        Job("reports", reports_job, every_seconds=600),
    )
}
