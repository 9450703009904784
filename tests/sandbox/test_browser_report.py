"""A real browser shows the period report in the sandbox: the owner runs `/contract report`
and sees the report posted in #general with its PDF and CSV, which download. Screenshot
`report-channel.png` (to docs/screenshots/ only under `make screenshots`)."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.sandbox.test_browser import (
    Shoot,
    be,
    browser,
    go,
    page,
    pytestmark,
    screenshots,
    shoot,
    type_command,
)

__all__ = ["browser", "page", "pytestmark", "screenshots", "shoot"]  # the shared fixtures

OWNER = "U0HRBP001"
REPORT_TIMEOUT = 60_000  # drawing the charts and the PDF on a loaded machine


async def test_the_owner_posts_the_report_with_its_files(page: Page, shoot: Shoot) -> None:
    await be(page, OWNER)
    await go(page, "C0GENERAL1")
    await type_command(page, "/contract report #general")
    messages = page.locator("#messages")
    await expect(messages).to_contain_text("North Star report:", timeout=REPORT_TIMEOUT)
    await expect(messages).to_contain_text("The portfolio")
    await expect(messages).to_contain_text("Dana Leader")
    files = page.locator(".msg-file")
    await expect(files.filter(has_text=".pdf")).to_be_visible(timeout=REPORT_TIMEOUT)
    await expect(files.filter(has_text=".csv")).to_be_visible()
    href = await files.filter(has_text=".pdf").evaluate("link => link.href")
    response = await page.request.get(href)
    assert response.ok and (await response.body()).startswith(b"%PDF")
    await expect(page.locator(".msg.ephemeral").last).to_contain_text("is in #general")
    await (
        page.locator(".msg")
        .filter(has_text="North Star report:")
        .last.evaluate("node => node.scrollIntoView({block: 'start'})")
    )
    await shoot(page, "report-channel")
