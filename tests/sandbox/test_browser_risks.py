"""A real browser drives risks in the sandbox: the leader raises one in the check-in (when
first seen, who owns it; a future date is refused), an earlier one is asked "Still open?",
the sponsor reads the open risks in the summary and resolves one with a note. Screenshots
`risks-*.png` (to docs/screenshots/ only under `make screenshots`)."""

from __future__ import annotations

from datetime import date, timedelta

from playwright.async_api import Page, expect

from bot.sandbox.runtime import Sandbox
from storage.db import writing
from storage.models import Risk
from tests.sandbox.test_browser import (
    LEADER,
    SPONSOR,
    Shoot,
    be,
    browser,
    field,
    go,
    modal,
    open_home,
    page,
    pytestmark,
    screenshots,
    shoot,
    type_command,
)

__all__ = ["browser", "page", "pytestmark", "screenshots", "shoot"]  # the shared fixtures


async def earlier_risk(sandbox: Sandbox) -> int:
    """A risk raised ten days ago (seen four days before that), still open."""
    now = sandbox.clock.now()
    async with sandbox.services.sessions() as session:
        await writing(session)
        risk = Risk(
            contract_id=1,
            text="Delivery dashboard data arrives a week late.",
            needs_sponsor_help=True,
            raised_by=LEADER,
            owner_id=LEADER,
            noticed_on=(now - timedelta(days=14)).date(),
            created_at=now - timedelta(days=10),
        )
        session.add(risk)
        await session.commit()
        return risk.id or 0


async def test_leader_raises_and_updates_risks_and_the_sponsor_resolves_one(
    page: Page, sandbox: Sandbox, shoot: Shoot
) -> None:
    carried = await earlier_risk(sandbox)
    await be(page, LEADER)
    await go(page, "D0LEAD001")
    await type_command(page, "/check", pick="/checkin")
    await expect(modal(page)).to_contain_text("Still open?")
    await expect(field(page, f"still:{carried}")).to_contain_text("Delivery dashboard data")
    await field(page, f"still:{carried}").get_by_text("Mitigating").click()
    await (
        field(page, f"still:{carried}:note")
        .locator("textarea")
        .fill("Using sprint report numbers as estimates.")
    )
    await field(page, "risk1").locator("textarea").fill("The Q3 launch takes two engineers.")
    await field(page, "risk1_help").locator("input").first.check()
    await field(page, "risk1_noticed").locator("input").fill("2030-01-01")
    await field(page, "confidence").get_by_text("4 · fairly confident").click()
    await modal(page).get_by_role("button", name="Save").click()
    await expect(field(page, "risk1_noticed").locator(".bk-error")).to_contain_text(
        "is in the future"
    )
    await field(page, "risk1_noticed").scroll_into_view_if_needed()
    await shoot(page, "risks-checkin-error")

    seen = sandbox.clock.now().date() - timedelta(days=3)
    await field(page, "risk1_noticed").locator("input").fill(seen.isoformat())
    await field(page, f"still:{carried}").scroll_into_view_if_needed()
    await shoot(page, "risks-checkin")
    await modal(page).get_by_role("button", name="Save").click()
    await expect(modal(page)).to_have_count(0)
    async with sandbox.services.sessions() as session:
        mitigating = await session.get(Risk, carried)
    assert mitigating is not None and mitigating.status == "mitigating"

    await be(page, SPONSOR)
    await go(page, "D0SPON001")
    await open_home(page)
    await page.locator("#home").get_by_role("button", name="Open summary").first.click()
    risks = modal(page).locator(".bk-section", has_text="The Q3 launch takes two engineers.")
    await expect(risks).to_contain_text(f"noticed {seen.day} {seen:%b %Y}")
    await expect(modal(page)).to_contain_text("Open risks (3)")  # with the demo's own
    await expect(modal(page)).to_contain_text("Resilience")
    # The modal is filled, then filled again once its charts are uploaded: wait for them, and
    # scroll at once (a scroll that waits for the element to be still can lose it to that
    # second render).
    await expect(modal(page).locator(".bk-image").first).to_be_visible()
    await risks.evaluate("node => node.scrollIntoView({block: 'center'})")
    await shoot(page, "risks-summary")

    await risks.get_by_role("button", name="Resolve").click()
    await expect(modal(page).last).to_contain_text("How was it resolved?")
    await modal(page).last.get_by_role("button", name="Resolve").click()
    await expect(modal(page).last).to_contain_text("Please complete this required field.")
    await (
        field(page, "note")
        .locator("textarea")
        .fill("Moved the launch by two weeks; the engineers stay.")
    )
    await modal(page).last.get_by_role("button", name="Resolve").click()
    await expect(modal(page).last).to_contain_text("Resolved on")
    await shoot(page, "risks-resolved")
    async with sandbox.services.sessions() as session:
        rows = [await session.get(Risk, carried + 1)]
    assert rows[0] is not None and rows[0].status == "resolved"
    assert rows[0].resolved_at is not None and rows[0].resolved_at.date() >= date(2027, 1, 1)
