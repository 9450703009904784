"""A real browser shares a lesson in the sandbox and searches lessons: the leader's *Share as
a lesson* after a check-in with a reflection, the modal, `/learnings` as the sponsor and as
the leader sees it, and App Home's *Lessons*. Screenshots `lessons-*.png` (to
docs/screenshots/ only under `make screenshots`)."""

from __future__ import annotations

from playwright.async_api import Page, expect

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


async def check_in_with_a_reflection(page: Page) -> None:
    await type_command(page, "/check", pick="/checkin")
    await expect(modal(page)).to_contain_text("Check-in")
    await field(page, "wins").locator("textarea").fill("Both managers ran an incident review.")
    await (
        field(page, "reflection")
        .locator("textarea")
        .fill("Handing the incident review to the managers worked once I said what done means.")
    )
    await field(page, "confidence").get_by_text("4 · fairly confident").click()
    await modal(page).get_by_role("button", name="Save").click()
    await expect(modal(page)).to_have_count(0)


async def test_a_leader_shares_a_lesson_and_others_find_it(page: Page, shoot: Shoot) -> None:
    await be(page, LEADER)
    await go(page, "D0LEAD001")
    await check_in_with_a_reflection(page)
    offer = page.locator(".msg", has=page.get_by_role("button", name="Share as a lesson"))
    await expect(offer).to_be_visible()
    await offer.get_by_role("button", name="Share as a lesson").click()
    await expect(modal(page)).to_contain_text("Share a lesson")
    await expect(field(page, "title").locator("input")).to_have_value(
        "Handing the incident review to the managers worked once I said what done means."
    )
    await field(page, "title").locator("input").fill("Say what done means when you delegate")
    await (
        field(page, "takeaway")
        .locator("textarea")
        .fill("Again: a written definition of done before handing over.")
    )
    await field(page, "activity_type").locator("select").select_option("coaching")
    await field(page, "tags").locator("input").fill("delegation, incident review")
    await shoot(page, "lessons-modal")
    await modal(page).get_by_role("button", name="Share").click()
    await expect(modal(page)).to_contain_text("Your lesson is shared with your name")
    await shoot(page, "lessons-shared")
    await modal(page).get_by_role("button", name="Done").click()

    await be(page, SPONSOR)
    await go(page, "D0SPON001")
    await type_command(page, "/learnings delegating")
    results = page.locator(".msg.ephemeral", has_text="Lessons matching")
    await expect(results).to_contain_text("Say what done means when you delegate")
    await expect(results).to_contain_text("incident-review")
    await expect(results).to_contain_text("ask @")
    await shoot(page, "lessons-search-sponsor")

    await type_command(page, '/learnings "NEAR*')
    await expect(page.locator(".msg.ephemeral", has_text="No lessons match “near”")).to_be_visible()

    await open_home(page)
    await expect(page.locator("#home")).to_contain_text("Lessons")
    await expect(page.locator("#home")).to_contain_text("Say what done means")
    await shoot(page, "lessons-home")

    await be(page, LEADER)
    await go(page, "D0LEAD001")
    await type_command(page, "/learn", pick="/learnings")
    latest = page.locator(".msg.ephemeral", has_text="The latest lessons")
    await expect(latest).to_contain_text("Say what done means when you delegate")
    await shoot(page, "lessons-search-leader")
