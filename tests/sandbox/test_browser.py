"""A real browser drives the sandbox's page as a person would, and photographs each screen.

Headless Chromium is Debian's (`/usr/bin/chromium`, or $CHROMIUM), driven by Playwright's
Python package; no browser is downloaded. Screenshots go to a temporary folder, and to
docs/screenshots/ (where the README shows them) only under `make screenshots`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.jobs import JOBS
from bot.sandbox.demo import GENERAL
from bot.sandbox.runtime import Sandbox

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

try:
    from playwright.async_api import Browser, Page, async_playwright, expect
except ImportError:  # pragma: no cover - the dev extra installs it
    async_playwright = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.skipif(
        async_playwright is None, reason="playwright is not installed (pip install -e '.[dev]')"
    ),
    pytest.mark.skipif(
        not Path(CHROMIUM).is_file(),
        reason=f"no Chromium at {CHROMIUM}: install Debian's chromium (apt-get install chromium) "
        "or set CHROMIUM to a Chromium binary",
    ),
]

LEADER, SPONSOR, PEER = "U0LEAD001", "U0SPON001", "U0PEER001"
TIMEOUT = 10_000
# A clock step runs every job at each stop on its way (a week ahead: some 40 stops), which
# takes seconds alone and several times that on a loaded machine: a wait, not a speed check.
CLOCK_TIMEOUT = 60_000
if async_playwright is not None:
    expect.set_options(timeout=TIMEOUT)


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        await launched.close()


@pytest_asyncio.fixture
async def page(browser: Browser, sandbox: Sandbox) -> AsyncIterator[Page]:
    opened = await browser.new_page(viewport={"width": 1280, "height": 800}, locale="en-GB")
    opened.set_default_timeout(TIMEOUT)
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(str(error)))
    await opened.goto(sandbox.page_url)
    await opened.wait_for_selector("body[data-ready=true]")
    yield opened
    await opened.close()
    assert problems == [], f"the page threw: {problems}"


Shoot = Callable[["Page", str], Awaitable[None]]


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """docs/screenshots/ under `make screenshots` (it sets $SANDBOX_SCREENSHOTS), else a
    temporary folder: a test run never rewrites the pictures the README shows."""
    chosen = os.environ.get("SANDBOX_SCREENSHOTS")
    return Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def shoot(screenshots: Path) -> Shoot:
    async def take(page: Page, name: str) -> None:
        screenshots.mkdir(parents=True, exist_ok=True)
        await page.wait_for_timeout(150)  # let the last render settle
        await page.screenshot(path=str(screenshots / f"{name}.png"))

    return take


async def be(page: Page, user: str) -> None:
    """Pick who you are in the switcher, as a person would."""
    await page.select_option("#who", user)
    await expect(page.locator(f'[data-conv="D{user[1:]}"]')).to_be_visible()


async def go(page: Page, conversation: str) -> None:
    await page.click(f'[data-conv="{conversation}"]')
    await expect(page.locator(f'[data-conv="{conversation}"]')).to_have_class("nav-item active")


async def type_command(page: Page, typed: str, *, pick: str | None = None) -> None:
    """Type into the composer; `pick` completes a suggestion (a command or a mention) first."""
    box = page.locator("#compose")
    await box.click()
    await box.press_sequentially(typed)
    if pick is not None:
        await expect(page.locator(".suggestion.selected")).to_contain_text(pick)
        await box.press("Enter")
    await box.press("Enter")
    await expect(box).to_have_value("")


async def open_home(page: Page) -> None:
    await page.click("#tab-home")
    await expect(page.locator("#home .bk-blocks")).to_be_visible()


def modal(page: Page) -> Any:
    return page.locator(".modal")


def field(page: Page, block_id: str) -> Any:
    return page.locator(f'.modal .bk-input[data-block-id="{block_id}"]')


async def test_leader_reads_the_summary_and_app_home(page: Page, shoot: Shoot) -> None:
    await be(page, LEADER)
    await go(page, "D0LEAD001")
    await type_command(page, "/cont", pick="/contract")  # `/contract` alone: the help
    await expect(page.locator(".msg.ephemeral", has_text="/contract summary")).to_be_visible()
    await type_command(page, "/contract summary")
    summary = page.locator(".msg.ephemeral", has_text="Success indicators")
    await expect(summary).to_contain_text("Success indicators")
    await expect(summary).to_contain_text("Team engagement score")
    await expect(summary).to_contain_text("Only visible to you")
    await summary.evaluate("node => node.scrollIntoView({block: 'start'})")
    await shoot(page, "summary")

    await open_home(page)
    await expect(page.locator("#home")).to_contain_text("Your contract")
    await expect(page.locator("#home")).to_contain_text("toward targets")
    await shoot(page, "home-leader")


async def test_leader_checks_in_and_the_prompt_updates(page: Page, shoot: Shoot) -> None:
    await be(page, LEADER)
    await go(page, "D0LEAD001")
    await page.click('.clock-buttons button[data-step="checkin"]')
    await expect(page.locator("#clock-note")).to_contain_text("sent", timeout=CLOCK_TIMEOUT)
    prompt = page.locator(".msg", has_text="Weekly check-in")
    await expect(prompt).to_be_visible()
    await shoot(page, "checkin-prompt")

    await type_command(page, "/check", pick="/checkin")
    await expect(modal(page)).to_contain_text("Check-in")
    await field(page, "wins").locator("textarea").fill("Both managers ran an incident review.")
    await field(page, "reflection").locator("textarea").fill("Delegating gets easier.")
    save = modal(page).get_by_role("button", name="Save")
    await save.click()  # the confidence is required: Slack's client stops here
    await expect(field(page, "confidence")).to_contain_text("Please complete this required field.")
    await field(page, "confidence").get_by_text("4 · fairly confident").click()
    await shoot(page, "checkin-modal")
    await save.click()

    await expect(modal(page)).to_have_count(0)
    await expect(prompt.or_(page.locator(".msg", has_text="submitted")).first).to_contain_text(
        "submitted"
    )
    await expect(page.locator(".msg", has_text="Weekly check-in")).to_have_count(0)
    await shoot(page, "checkin-done")


async def test_a_draft_contract_with_field_errors_and_a_pushed_modal(
    page: Page, shoot: Shoot
) -> None:
    await be(page, "U0PEER002")
    await go(page, "D0PEER002")
    await type_command(page, "/contract new")
    await expect(modal(page)).to_contain_text("New contract")
    await field(page, "title").locator("input").fill("Head of Sales: FY2027")
    await field(page, "sponsor").locator("select").select_option(SPONSOR)
    await field(page, "period_start").locator("input").fill("2027-06-07")
    await field(page, "period_end").locator("input").fill("2027-05-03")
    await modal(page).get_by_role("button", name="Create draft").click()
    # The bot answers response_action: errors; the page shows it under the field.
    await expect(field(page, "period_end").locator(".bk-error")).to_contain_text("The end")
    await expect(field(page, "title").locator("input")).to_have_value("Head of Sales: FY2027")
    await shoot(page, "draft-errors")

    await field(page, "period_end").locator("input").fill("2027-12-17")
    await modal(page).get_by_role("button", name="Create draft").click()
    await expect(modal(page)).to_contain_text("Draft created")
    await modal(page).get_by_role("button", name="Add expectation").click()
    await expect(modal(page).locator("h2")).to_have_text("Add expectation")
    await field(page, "kind").locator("select").select_option("impact")
    await field(page, "text").locator("textarea").fill("Build a forecast the board trusts.")
    await modal(page).get_by_role("button", name="Add", exact=True).click()
    await expect(modal(page)).to_contain_text("Build a forecast the board trusts.")
    await expect(modal(page)).to_contain_text("Added the expectation")
    await shoot(page, "draft-editor")


async def test_a_draft_item_is_edited_and_removed_and_the_draft_discarded(
    page: Page, shoot: Shoot
) -> None:
    await be(page, "U0PEER002")
    await go(page, "D0PEER002")
    await type_command(page, "/contract new")
    await field(page, "title").locator("input").fill("Head of Sales: FY2027")
    await field(page, "sponsor").locator("select").select_option(SPONSOR)
    await field(page, "period_start").locator("input").fill("2027-06-07")
    await field(page, "period_end").locator("input").fill("2027-12-17")
    await modal(page).get_by_role("button", name="Create draft").click()
    await expect(modal(page)).to_contain_text("Draft created")
    await modal(page).get_by_role("button", name="Add expectation").click()
    await field(page, "kind").locator("select").select_option("impact")
    await field(page, "text").locator("textarea").fill("Build a forecast the board trusts.")
    await modal(page).get_by_role("button", name="Add", exact=True).click()
    await expect(modal(page)).to_contain_text("Added the expectation")

    await modal(page).get_by_role("button", name="Edit E1").click()
    await expect(modal(page).locator("h2")).to_have_text("Edit E1")
    text = field(page, "text").locator("textarea")
    await expect(text).to_have_value("Build a forecast the board trusts.")
    await text.fill("Build a forecast the board trusts within 5%.")
    await modal(page).get_by_role("button", name="Save").click()
    await expect(modal(page)).to_contain_text("Saved E1.")
    await expect(modal(page)).to_contain_text("within 5%.")
    await shoot(page, "draft-item-buttons")

    await modal(page).get_by_role("button", name="Remove E1").click()
    await expect(page.locator("#confirm")).to_contain_text("Remove E1?")
    await page.locator("#confirm").get_by_role("button", name="Keep it").click()
    await expect(modal(page)).to_contain_text("within 5%.")
    await modal(page).get_by_role("button", name="Remove E1").click()
    await page.locator("#confirm").get_by_role("button", name="Remove").click()
    await expect(modal(page)).to_contain_text("Removed E1.")

    await modal(page).get_by_role("button", name="Discard draft").click()
    await expect(page.locator("#confirm")).to_contain_text("Discard this draft?")
    await page.locator("#confirm").get_by_role("button", name="Discard").click()
    await expect(modal(page)).to_contain_text("is discarded")


async def test_a_modal_stays_with_the_person_who_opened_it(page: Page) -> None:
    """Switching *You are* takes the modal away with its person, typed text and all."""
    await be(page, "U0PEER002")
    await go(page, "D0PEER002")
    await type_command(page, "/contract new")
    await expect(modal(page)).to_contain_text("New contract")
    await field(page, "title").locator("input").fill("Head of Sales: FY2027")
    await field(page, "sponsor").locator("select").select_option(SPONSOR)

    await be(page, SPONSOR)
    await expect(modal(page)).to_have_count(0)
    await expect(page.locator("#modal-layer")).to_be_hidden()
    await type_command(page, "/contract help")  # Sam's own page works as Sam's
    await expect(page.locator(".msg.ephemeral", has_text="/contract summary")).to_be_visible()

    await be(page, "U0PEER002")
    await expect(modal(page)).to_contain_text("New contract")
    await expect(field(page, "title").locator("input")).to_have_value("Head of Sales: FY2027")
    await expect(field(page, "sponsor").locator("select")).to_have_value(SPONSOR)
    await field(page, "period_start").locator("input").fill("2027-06-07")
    await field(page, "period_end").locator("input").fill("2027-12-17")
    await modal(page).get_by_role("button", name="Create draft").click()
    await expect(modal(page)).to_contain_text("Draft created")
    await expect(modal(page).locator(".modal-problem")).to_be_hidden()


async def test_the_message_menu_opens_inside_the_window(page: Page) -> None:
    await be(page, LEADER)
    await go(page, GENERAL)
    message = page.locator(".msg", has_text="delivery dashboard")
    await message.hover()
    toggle = message.get_by_role("button", name="More actions")
    await toggle.click()
    menu = message.locator(".msg-menu")
    await expect(menu).to_be_visible()
    box, anchor = await menu.bounding_box(), await toggle.bounding_box()
    assert box is not None and anchor is not None
    width = await page.evaluate("document.documentElement.clientWidth")
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, (box, width)
    # It opens leftwards, its right edge under the ⋮ (as Slack's does).
    assert abs((box["x"] + box["width"]) - (anchor["x"] + anchor["width"])) <= 2, (box, anchor)


async def test_a_peer_gives_feedback(page: Page, shoot: Shoot) -> None:
    await be(page, PEER)
    await go(page, "D0PEER001")
    await type_command(page, "/feedback @da", pick="Dana Leader")
    await expect(modal(page)).to_contain_text("Give feedback")
    await field(page, "expectation").locator("select").select_option("E1")
    await field(page, "polarity").locator("input").first.check()
    await field(page, "situation").locator("textarea").fill("The Q1 roadmap review.")
    await (
        field(page, "behaviour")
        .locator("textarea")
        .fill("Dana put each trade-off in delivery weeks.")
    )
    await field(page, "impact").locator("textarea").fill("Product chose in the room.")
    await field(page, "relation").locator("input").first.check()  # Pia: a peer
    await shoot(page, "feedback")
    await modal(page).get_by_role("button", name="Send").click()
    await expect(modal(page).locator("h2")).to_have_text("Feedback sent")
    await modal(page).get_by_role("button", name="Close").first.click()
    await expect(modal(page)).to_have_count(0)

    await type_command(page, "/feedback mine")
    entry = modal(page).locator(".bk-section", has_text="Dana put each trade-off")
    await entry.get_by_role("button", name="Delete").click()
    await expect(page.locator("#confirm")).to_contain_text("Delete this feedback?")
    await page.locator("#confirm").get_by_role("button", name="Keep").click()
    await expect(entry).to_be_visible()
    await entry.get_by_role("button", name="Delete").click()
    await page.locator("#confirm").get_by_role("button", name="Delete").click()
    await expect(modal(page)).to_contain_text("Deleted.")
    await expect(modal(page)).not_to_contain_text("Dana put each trade-off")


async def test_add_as_evidence_from_a_message(page: Page, shoot: Shoot) -> None:
    await be(page, LEADER)
    await go(page, GENERAL)
    message = page.locator(".msg", has_text="delivery dashboard")
    await message.hover()
    await message.get_by_role("button", name="More actions").click()
    await message.get_by_role("button", name="Add as evidence").click()
    await expect(modal(page)).to_contain_text("Add evidence")
    await expect(modal(page)).to_contain_text("median cycle time")
    await (
        field(page, "item").locator("select").select_option(label="I2 · Median project cycle time")
    )
    await field(page, "note").locator("textarea").fill("February's median: 39 days.")
    await shoot(page, "evidence")
    await modal(page).get_by_role("button", name="Add", exact=True).click()
    await expect(modal(page).locator("h2")).to_have_text("Evidence added")


async def test_the_sponsor_opens_app_home_and_a_summary(page: Page, shoot: Shoot) -> None:
    await be(page, SPONSOR)
    await go(page, "D0SPON001")
    await open_home(page)
    await expect(page.locator("#home")).to_contain_text("Contracts you sponsor or govern")
    await expect(page.locator("#home")).to_contain_text("@Dana Leader")
    await shoot(page, "home-sponsor")
    await page.locator("#home").get_by_role("button", name="Open summary").first.click()
    await expect(modal(page)).to_contain_text("Success indicators")
    await modal(page).get_by_role("button", name="Close").first.click()
    await expect(modal(page)).to_have_count(0)


RENDER_BLOCKS = """async () => {
  const kit = await import("/static/blocks.js");
  const sent = [];
  const ctx = {
    people: new Map([["U0LEAD001", {id: "U0LEAD001", name: "dana", real_name: "Dana Leader"}]]),
    channels: new Map([["C0GENERAL1", "general"]]),
    confirm: async () => true,
    onAction: (element, blockId, payload) => sent.push({id: element.action_id, blockId, payload}),
  };
  const plain = (text) => ({type: "plain_text", text});
  const option = (value) => ({text: plain(`Option ${value}`), value});
  const blocks = [
    {type: "header", text: plain("Weekly digest :tada:")},
    {type: "section", block_id: "s", text: {type: "mrkdwn", text: "*bold* _it_ ~gone~ `x<y`"},
     fields: [{type: "mrkdwn", text: "<@U0LEAD001> in <#C0GENERAL1>"},
              {type: "mrkdwn", text: "<https://example.com|a link> <javascript:alert(1)|bad>"}],
     accessory: {type: "overflow", action_id: "more", options: [option("a"), option("b")],
                 confirm: {title: plain("Sure?"), text: plain("Really"), confirm: plain("Yes"),
                           deny: plain("No")}}},
    {type: "divider"},
    {type: "image", image_url: "https://example.com/x.png", alt_text: "a chart",
     title: plain("Chart")},
    {type: "context", elements: [{type: "mrkdwn", text: "&lt;b&gt; &amp; more"}]},
    {type: "section", text: {type: "mrkdwn", text: "said:\\n>quoted\\n&gt; not quoted"}},
    {type: "actions", block_id: "act", elements: [
      {type: "button", action_id: "go", text: plain("Go"), value: "v", style: "danger"},
      {type: "static_select", action_id: "pick", options: [option("1"), option("2")]},
      {type: "checkboxes", action_id: "boxes", options: [option("c"), option("d")]}]},
    {type: "rich_text", elements: [{type: "rich_text_list", style: "bullet", elements: [
      {type: "rich_text_section",
       elements: [{type: "text", text: "listed", style: {bold: true}}]}]}]},
    {type: "video", title: plain("Not here")},
  ];
  const root = kit.renderBlocks(blocks, ctx);
  document.body.append(root);
  root.querySelector(".bk-overflow-toggle").click();
  root.querySelectorAll(".bk-menu-item")[1].click();
  await new Promise((r) => setTimeout(r, 0));
  root.querySelector(".bk-button.danger").click();
  const select = root.querySelector(".bk-actions select");
  select.value = "2";
  select.dispatchEvent(new Event("change"));
  const box = root.querySelector(".bk-actions input[type=checkbox]");
  box.checked = true;
  box.dispatchEvent(new Event("change"));
  await new Promise((r) => setTimeout(r, 0));
  const view = {blocks: [
    {type: "input", block_id: "n", label: plain("N"), element: {type: "number_input",
     action_id: "n", is_decimal_allowed: false, min_value: "1"}},
    {type: "input", block_id: "u", label: plain("U"),
     element: {type: "url_text_input", action_id: "u"}},
    {type: "input", block_id: "e", label: plain("E"),
     element: {type: "email_text_input", action_id: "e"}},
    {type: "input", block_id: "o", optional: true, label: plain("O"),
     element: {type: "plain_text_input", action_id: "o"}},
  ]};
  return {
    html: root.innerHTML,
    sent,
    errors: kit.checkInputs(view, {n: {n: "2.5"}, u: {u: "nope"}, e: {e: "a@b"}, o: {o: null}}),
    fine: kit.checkInputs(view, {n: {n: "3"}, u: {u: "https://a.example/x"}, e: {e: "a@b.co"}}),
  };
}"""


async def test_block_kit_is_rendered_and_sends_what_slack_would(page: Page) -> None:
    result = await page.evaluate(RENDER_BLOCKS)
    html = result["html"]
    for fragment in (
        "Weekly digest 🎉",
        "<b>bold</b> <i>it</i> <s>gone</s> <code>x&lt;y</code>",
        "@Dana Leader",
        "#general",
        '<a href="https://example.com" target="_blank" rel="noopener noreferrer">a link</a>',
        'alt="a chart"',
        "&lt;b&gt; &amp; more",
        "<li><b>listed</b></li>",
        'said:<br><span class="quote">quoted</span><br>&gt; not quoted',
        "[video block]",
    ):
        assert fragment in html
    assert "javascript:" not in html
    assert result["sent"] == [
        {"id": "more", "blockId": "s", "payload": {"value": "b"}},
        {"id": "go", "blockId": "act", "payload": {}},
        {"id": "pick", "blockId": "act", "payload": {"value": "2"}},
        {"id": "boxes", "blockId": "act", "payload": {"selected": ["c"]}},
    ]
    assert result["errors"] == {
        "n": "Please enter a whole number.",
        "u": "Please enter a valid URL.",
        "e": "Please enter a valid email address.",
    }
    assert result["fine"] == {}


@pytest.mark.skipif("digests" not in JOBS, reason="no digests job is registered yet")
async def test_the_sponsor_gets_the_digest_when_the_clock_moves(page: Page, shoot: Shoot) -> None:
    await be(page, SPONSOR)
    await go(page, "D0SPON001")
    await page.click('.clock-buttons button[data-step="digest"]')
    await expect(page.locator("#clock-note")).to_contain_text("sent", timeout=CLOCK_TIMEOUT)
    await expect(page.locator(".msg").first).to_be_visible()
    await shoot(page, "digest")
