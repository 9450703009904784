"""The end of a contract's period in a real browser: the leader's closing reflection, the
sponsor's Renew and the draft it makes and sends for agreement, App Home while the renewal
awaits agreement, the leader's and owner's agreement that closes the old contract, the
owner's `/contract close`, App Home's Closed list.

Uses the fixtures of `test_browser.py` (Debian's Chromium, skipped cleanly without it);
screenshots `renewal-*.png` go to docs/screenshots/ only under `make screenshots`.
"""

from __future__ import annotations

from bot.sandbox.runtime import Sandbox
from tests.bot.checkins.test_support import at
from tests.sandbox.test_browser import (
    LEADER,
    SPONSOR,
    Page,
    Shoot,
    be,
    browser,
    expect,
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

__all__ = ["browser", "page", "pytestmark", "screenshots", "shoot"]

OWNER = "U0HRBP001"
# The demo contract's last day is 17 Dec 2027 (Europe/Berlin).
LAST_DAY = at("2027-12-17 08:00", "Europe/Berlin")


async def next_day(page: Page) -> None:
    before = await page.locator("#clock-note").text_content()
    await page.click('.clock-buttons button[data-step="day"]')
    await expect(page.locator("#clock-note")).not_to_have_text(before or "")


async def test_the_leader_reflects_and_the_sponsor_renews(
    page: Page, sandbox: Sandbox, shoot: Shoot
) -> None:
    sandbox.clock.set(LAST_DAY)
    await be(page, LEADER)
    await go(page, "D0LEAD001")
    await next_day(page)  # past the last day: the period is over
    ask = page.locator(".msg", has_text="closing reflection")
    await expect(ask).to_be_visible()
    await ask.get_by_role("button", name="Write a reflection").click()
    await expect(modal(page)).to_contain_text("Closing reflection")
    await (
        field(page, "reflection")
        .locator("textarea")
        .fill("Delegating the roadmap reviews freed a day a week; cycle time is next.")
    )
    await shoot(page, "renewal-reflection")
    await modal(page).get_by_role("button", name="Save").click()
    await expect(modal(page).locator("h2")).to_have_text("Reflection saved")
    await modal(page).get_by_role("button", name="Done").first.click()

    await be(page, SPONSOR)
    await go(page, "D0SPON001")
    ended = page.locator(".msg", has_text="Contract period ended")
    await expect(ended).to_contain_text("Final figures")
    await expect(ended).to_contain_text("freed a day a week")
    await ended.evaluate("node => node.scrollIntoView({block: 'start'})")
    await shoot(page, "renewal-end-of-period")
    await ended.get_by_role("button", name="Renew").click()
    renewed = page.locator(".msg", has_text="is a new draft")
    await expect(renewed).to_contain_text("Sent for agreement")
    await shoot(page, "renewal-renewed")
    await renewed.get_by_role("button", name="Open the draft").click()
    await expect(modal(page)).to_contain_text("renewed")
    await shoot(page, "renewal-draft")
    await modal(page).get_by_role("button", name="Close").first.click()

    # Until everyone agreed, the old contract stays active and says its renewal waits.
    await open_home(page)
    home = page.locator("#home")
    await expect(home).to_contain_text("Renewal awaiting agreement")
    await expect(home).to_contain_text("waiting for")
    await shoot(page, "renewal-home")

    # Dana and Hana agree in their DMs; the last agreement closes the old contract.
    for user, channel in ((LEADER, "D0LEAD001"), (OWNER, "D0HRBP001")):
        await be(page, user)
        await go(page, channel)
        request = page.locator(".msg", has_text="For your agreement").last
        await expect(request).to_contain_text("Replaces the current contract")
        await request.get_by_role("button", name="Agree").click()
    await expect(request).to_contain_text("the contract is active")
    await open_home(page)
    await expect(page.locator("#home")).to_contain_text("Closed")


async def test_the_owner_closes_with_the_final_figures(page: Page, shoot: Shoot) -> None:
    await be(page, OWNER)
    await go(page, "D0HRBP001")
    await type_command(page, "/contract close")
    await expect(modal(page)).to_contain_text("Final figures")
    await field(page, "reason").locator("textarea").fill("Dana moves to the CTO office.")
    await shoot(page, "renewal-close")
    await modal(page).get_by_role("button", name="Close contract").click()
    await expect(modal(page).locator("h2")).to_have_text("Contract closed")
    await modal(page).get_by_role("button", name="Done").first.click()

    await be(page, LEADER)
    await go(page, "D0LEAD001")
    await expect(page.locator(".msg", has_text="is closed")).to_contain_text("CTO office")
    await type_command(page, "/contract summary")
    summary = page.locator(".msg.ephemeral", has_text="Success indicators")
    await expect(summary).to_contain_text("Closed on")
    await summary.evaluate("node => node.scrollIntoView({block: 'start'})")
    await shoot(page, "renewal-closed-summary")
