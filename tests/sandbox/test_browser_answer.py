"""A real browser answers a check-in in the sandbox: the sponsor reads the leader's latest
check-ins in the digest, opens one whole with *More*, replies (a field error first), and the
leader finds the reply under their check-in and in `/checkin history`. Screenshots `answer-*.png`
(to docs/screenshots/ only under `make screenshots`)."""

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


async def send_digests(sandbox: Sandbox) -> None:
    await JOBS["digests"].run(JobRun(services=sandbox.services, client=sandbox.client, force=True))


async def test_the_sponsor_reads_and_answers_a_checkin(
    page: Page, sandbox: Sandbox, shoot: Shoot
) -> None:
    await send_digests(sandbox)  # the demo's March digest, if it has not gone yet

    await be(page, SPONSOR)
    await go(page, "D0SPON001")
    digest = page.locator(".msg", has_text="North Star digest").last
    await expect(digest).to_contain_text("Check-in, week 9")
    await expect(digest).to_contain_text("Delegating reviews is hard.")
    await expect(digest).to_contain_text("Confidence 3 → 4")
    await digest.get_by_text("Check-in, week 9").scroll_into_view_if_needed()
    await shoot(page, "answer-digest")

    await digest.get_by_role("button", name="More").last.click()
    await expect(modal(page)).to_contain_text("Delegating reviews is hard.")
    await expect(modal(page)).to_contain_text("Confidence")
    await shoot(page, "answer-more")

    await modal(page).get_by_role("button", name="Reply").click()
    await expect(modal(page).last).to_contain_text("Reply to check-in")
    send = modal(page).last.get_by_role("button", name="Send")
    await send.click()  # empty: Slack's client stops here
    await expect(field(page, "reply").last).to_contain_text("Please complete this required field.")
    await (
        field(page, "reply")
        .last.locator("textarea")
        .fill("Proud of you for staying out of it. Let's plan the planning hour together.")
    )
    await shoot(page, "answer-reply")
    await send.click()
    await expect(modal(page)).to_have_count(0)

    await be(page, LEADER)
    await go(page, "D0LEAD001")
    threaded = page.locator(".msg", has_text="replied to your check-in")
    await expect(threaded).to_contain_text("Let's plan the planning hour together.")
    await type_command(page, "/checkin history")
    history = page.locator(".msg.ephemeral", has_text="Replies to your check-ins")
    await expect(history).to_contain_text("Proud of you for staying out of it.")
    await shoot(page, "answer-history")
