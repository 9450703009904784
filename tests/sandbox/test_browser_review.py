"""A real browser drives the alignment review in the sandbox: the leader's DM, the review
modal, the recorded outcome with its *Amend* button, and the sponsor seeing the leader's
choices. Screenshots `review-*.png` (to docs/screenshots/ only under `make screenshots`)."""

from __future__ import annotations

from playwright.async_api import Page, expect

from bot.jobs import JOBS
from bot.sandbox.runtime import Sandbox
from bot.scheduler import JobRun
from tests.sandbox.test_browser import (
    LEADER,
    SPONSOR,
    Shoot,
    be,
    browser,
    field,
    go,
    modal,
    page,
    pytestmark,
    screenshots,
    shoot,
    type_command,
)

__all__ = ["browser", "page", "pytestmark", "screenshots", "shoot"]  # the shared fixtures


async def send_reviews(sandbox: Sandbox) -> None:
    """The review of the demo contract's first quarter, due now (as on 18 March at 09:00)."""
    await JOBS["reviews"].run(JobRun(services=sandbox.services, client=sandbox.client, force=True))


async def test_leader_and_sponsor_review_the_alignment(
    page: Page, sandbox: Sandbox, shoot: Shoot
) -> None:
    await be(page, LEADER)
    await go(page, "D0LEAD001")
    await send_reviews(sandbox)
    message = page.locator(".msg", has=page.get_by_role("button", name="Start the review"))
    await expect(message).to_be_visible()
    await expect(message).to_contain_text("keep")
    await shoot(page, "review-dm")

    await message.get_by_role("button", name="Start the review").click()
    await expect(modal(page)).to_contain_text("Alignment review")
    await field(page, "expectation.E3").get_by_text("Retire").click()
    await (
        field(page, "note.expectation.E3")
        .locator("input, textarea")
        .first.fill("The reorganisation made it moot.")
    )
    await field(page, "indicator.I2").get_by_text("Amend").click()
    await (
        field(page, "note.indicator.I2")
        .locator("input, textarea")
        .first.fill("The target is too soft now.")
    )
    await shoot(page, "review-modal")
    await modal(page).get_by_role("button", name="Record review").click()
    await expect(modal(page)).to_contain_text("Review recorded")
    await expect(modal(page)).to_contain_text("retired E3")
    await shoot(page, "review-done")

    await modal(page).get_by_role("button", name="Amend I2").click()
    await expect(modal(page).last).to_contain_text("Change I2")
    await shoot(page, "review-amend")

    await be(page, SPONSOR)
    await go(page, "D0SPON001")
    start = page.get_by_role("button", name="Start the review")
    sponsor_message = page.locator(".msg", has=start)
    await expect(sponsor_message).to_be_visible()
    await sponsor_message.get_by_role("button", name="Start the review").click()
    await expect(modal(page)).to_contain_text("chose Retire")
    await field(page, "expectation.E3").scroll_into_view_if_needed()
    await shoot(page, "review-sponsor")


async def test_the_leader_proposes_a_governance_change(page: Page, shoot: Shoot) -> None:
    await be(page, LEADER)
    await go(page, "D0LEAD001")
    await type_command(page, "/contract amend")
    await expect(modal(page)).to_contain_text("Propose an amendment")
    await field(page, "item").locator("select").select_option("governance:governance")
    await modal(page).get_by_role("button", name="Next").click()
    await expect(modal(page)).to_contain_text("Change governance")
    await field(page, "checkin_time").locator("input").fill("09:30")
    await (
        field(page, "rationale")
        .locator("textarea")
        .fill("Fridays at 15:00 collide with the release review.")
    )
    await shoot(page, "governance-form")
    await modal(page).get_by_role("button", name="Propose").click()
    await expect(modal(page)).to_contain_text("Amendment proposed")
