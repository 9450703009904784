"""A real browser shows the charts in the sandbox: the uploaded PNGs in the summary and in
App Home, served by the local Slack. Screenshots `charts-*.png` (to docs/screenshots/ only
under `make screenshots`)."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.sandbox.test_browser import (
    LEADER,
    SPONSOR,
    Shoot,
    be,
    browser,
    go,
    open_home,
    page,
    pytestmark,
    screenshots,
    shoot,
    type_command,
)

__all__ = ["browser", "page", "pytestmark", "screenshots", "shoot"]  # the shared fixtures


async def test_the_summary_and_app_home_show_the_charts(page: Page, shoot: Shoot) -> None:
    await be(page, LEADER)
    await go(page, "D0LEAD001")
    await type_command(page, "/contract summary")
    charts = page.locator(".msg.ephemeral .bk-image")
    await expect(charts.first).to_be_visible()
    await expect(charts.first).to_contain_text("I1 · Team engagement score")
    first = charts.first.locator("img")
    await expect(first).to_have_js_property("complete", True)
    await expect(first).to_have_js_property("naturalWidth", 600)  # the PNG decoded
    await charts.first.evaluate("node => node.scrollIntoView({block: 'start'})")
    await shoot(page, "charts-summary")

    await open_home(page)
    home_chart = page.locator("#home .bk-image img").first
    await expect(home_chart).to_be_visible()
    await expect(home_chart).to_have_js_property("naturalWidth", 600)
    await home_chart.evaluate("node => node.scrollIntoView({block: 'center'})")
    await shoot(page, "charts-home")


async def test_the_sponsor_sees_the_leaders_charts_in_app_home(page: Page, shoot: Shoot) -> None:
    await be(page, SPONSOR)
    await open_home(page)
    await expect(page.locator("#home")).to_contain_text("Contracts you sponsor or govern")
    chart = page.locator("#home .bk-image img").first
    await expect(chart).to_be_visible()
    await expect(chart).to_have_js_property("naturalWidth", 600)
    await chart.evaluate("node => node.scrollIntoView({block: 'center'})")
    await shoot(page, "charts-home-sponsor")
