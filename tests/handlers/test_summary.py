"""App Home by role, and the summary modal it opens."""

from __future__ import annotations

from bot.ui.metadata import ContractRef
from tests.conftest import Bot
from tests.harness import filled_modal, modal_says


async def home_of(bot: Bot, user: str) -> str:
    before = len(bot.fake.calls_to("views.publish"))
    response = await bot.driver.app_home_opened(user)
    assert response.status == 200
    calls = await bot.fake.wait_for("views.publish", count=before + 1)
    assert calls[-1].response["ok"], calls[-1].response
    return str(bot.fake.home_views[user])


async def test_a_new_user_is_told_how_to_start(bot: Bot) -> None:
    home = await home_of(bot, "U0OUTSIDE")
    assert "/contract new" in home and "/feedback @leader" in home


async def test_the_leader_sees_their_contract(bot: Bot, example_contract: int) -> None:
    home = await home_of(bot, "U0LEAD001")
    assert "Your contract: Head of Platform" in home
    assert "Team engagement score" in home and "toward targets" in home


async def test_the_sponsor_sees_what_they_govern(bot: Bot, example_contract: int) -> None:
    home = await home_of(bot, "U0SPON001")
    assert "Contracts you sponsor or govern" in home
    assert "you are approver, sponsor" in home


async def test_open_summary_opens_a_modal_for_readers_only(bot: Bot, example_contract: int) -> None:
    await home_of(bot, "U0SPON001")
    home = bot.fake.home_views["U0SPON001"]
    await bot.driver.block_action(
        user="U0SPON001", action_id="home_open_summary", view=home, block_id="governed_0"
    )
    opened = (await bot.fake.wait_for("views.open"))[-1]
    assert opened.response["ok"], opened.response
    assert "Success indicators" in str(await filled_modal(bot.fake, "U0SPON001"))

    # Someone who may not read it: the modal opens as for anyone, and says so.
    posted = len(bot.fake.calls_to("chat.postMessage"))
    await bot.driver.block_action(
        user="U0PEER001", action_id="home_open_summary", view=home, block_id="governed_0"
    )
    assert await modal_says(bot.fake, "U0PEER001", opened=2) == "You can't read that contract."
    assert len(bot.fake.calls_to("chat.postMessage")) == posted

    # Nor does a made-up id tell whether such a contract exists.
    await bot.driver.block_action(
        user="U0PEER001", action_id="home_open_summary", value=ContractRef.write(contract_id=999)
    )
    assert await modal_says(bot.fake, "U0PEER001", opened=3) == "You can't read that contract."
