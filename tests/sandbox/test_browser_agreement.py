"""The agreement flow in a real browser: the owner sends Dana's next contract for agreement as
replacing her current one, Dana asks for a change and then agrees, Sam agrees last, and the
old contract closes with its history readable. Screenshots `agreement-*.png`."""

from __future__ import annotations

from bot.contracts.io import import_text
from bot.sandbox.demo import DEMO_CONTRACT
from bot.sandbox.runtime import Sandbox
from tests.sandbox.test_browser import (  # noqa: F401 - fixtures, and the page's helpers
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
    page,
    pytestmark,
    screenshots,
    shoot,
    type_command,
)

OWNER = "U0HRBP001"
NEXT_TITLE = "Head of Platform: FY2028 leadership contract"


async def seed_next_draft(sandbox: Sandbox) -> None:
    """Dana's next contract, imported as a plain draft (not yet sent), as HR would."""
    text = DEMO_CONTRACT.read_text(encoding="utf-8").replace(
        "Head of Platform: FY2027 leadership contract", NEXT_TITLE
    )
    results, problems = await import_text(
        text,
        filename="next.yml",
        sessions=sandbox.services.sessions,
        client=sandbox.client,
        draft=True,
        now=sandbox.clock.now(),
        actor_id=OWNER,
    )
    assert problems == [] and results


async def test_leader_sponsor_and_owner_agree_and_the_old_contract_closes(
    page: Page,  # noqa: F811 - the fixture imported above
    sandbox: Sandbox,
    shoot: Shoot,  # noqa: F811
) -> None:
    await seed_next_draft(sandbox)

    # Hana, the owner: the editor's Send for agreement, replacing Dana's current contract.
    await be(page, OWNER)
    await go(page, "D0HRBP001")
    await type_command(page, "/contract edit @da", pick="Dana Leader")
    await expect(modal(page)).to_contain_text(NEXT_TITLE)
    await modal(page).get_by_role("button", name="Send for agreement").click()
    await expect(modal(page).locator("h2")).to_have_text("Send for agreement")
    await field(page, "replaces").get_by_text("Replace it when everyone agrees").click()
    await shoot(page, "agreement-send")
    await modal(page).get_by_role("button", name="Send", exact=True).click()
    await expect(modal(page).locator("h2")).to_have_text("Sent for agreement")
    await expect(modal(page)).to_contain_text("each got the terms in a DM")
    await modal(page).get_by_role("button", name="Done").first.click()  # back to the editor
    await expect(modal(page)).to_contain_text("Sent for agreement: ")
    await modal(page).get_by_role("button", name="Done").first.click()
    await expect(modal(page)).to_have_count(0)

    # Dana, the leader: the terms in a DM; she asks for a change first.
    await be(page, LEADER)
    await go(page, "D0LEAD001")
    request = page.locator(".msg", has_text="For your agreement").last
    await expect(request).to_contain_text("Replaces the current contract")
    await expect(request.get_by_role("button", name="Agree")).to_be_visible()
    await request.evaluate("node => node.scrollIntoView({block: 'end'})")
    await shoot(page, "agreement-leader-dm")
    await request.get_by_role("button", name="Ask for a change").click()
    await expect(modal(page).locator("h2")).to_have_text("Ask for a change")
    await (
        field(page, "comment")
        .locator("textarea")
        .fill("Can the coaching budget cover six sessions instead of four?")
    )
    await shoot(page, "agreement-ask-change")
    await modal(page).get_by_role("button", name="Send", exact=True).click()
    await expect(modal(page)).to_have_count(0)

    # Hana reads the comment in her DM.
    await be(page, OWNER)
    await go(page, "D0HRBP001")
    comment = page.locator(".msg", has_text="asks for a change").last
    await expect(comment).to_contain_text("six sessions instead of four")
    await shoot(page, "agreement-change-request")

    # Dana agrees after all; then Sam, the sponsor, agrees last and the contract starts.
    await be(page, LEADER)
    await go(page, "D0LEAD001")
    request = page.locator(".msg", has_text="For your agreement").last
    await request.get_by_role("button", name="Agree").click()
    await expect(request).to_contain_text("waiting for")
    await be(page, SPONSOR)
    await go(page, "D0SPON001")
    request = page.locator(".msg", has_text="For your agreement").last
    await expect(request).to_contain_text("terms version 1")
    await request.get_by_role("button", name="Agree").click()
    await expect(request).to_contain_text("the contract is active")
    await request.evaluate("node => node.scrollIntoView({block: 'start'})")
    await shoot(page, "agreement-active")

    # The old contract is closed and still readable.
    await type_command(page, "/contract history @da", pick="Dana Leader")
    history = page.locator(".msg.ephemeral", has_text="History").last
    await expect(history).to_contain_text("replaced by a new contract")
    await expect(history).to_contain_text("agreed to terms version 1")
    await history.evaluate("node => node.scrollIntoView({block: 'start'})")
    await shoot(page, "agreement-history")
