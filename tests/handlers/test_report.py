"""`/contract report` through signed requests and the fake Slack: who may ask, the bad forms,
channels the bot may not post in, and what is posted: Block Kit with names, a CSV and a PDF."""

from __future__ import annotations

import io
import re
from typing import Any

import pypdf
import pytest

from bot.contracts.io import import_text
from tests.bot.amendments.test_service import example_text
from tests.conftest import _block_text, response_texts
from tests.fakes import FakeSlack
from tests.harness import Bot

OWNER, LEADER, PEER, VP = "U0HRBP001", "U0LEAD001", "U0PEER001", "U0VP00001"
TIMEOUT = 60.0  # drawing and the PDF are slow on a loaded machine; no timing is asserted
READERS = (
    "  reporting: Quarterly summary to the executive team\n",
    "  reporting: Quarterly summary to the executive team\n"
    "  report:\n    cadence: quarterly\n    readers: [victor@example.com]\n",
)


async def import_contract(bot: Bot, *replacements: tuple[str, str]) -> int:
    results, problems = await import_text(
        example_text(*replacements),
        filename="c.yml",
        sessions=bot.sessions,
        client=bot.app.client,
        draft=False,
        now=bot.clock.now(),
    )
    assert problems == []
    return results[0].contract_id


async def ask(bot: Bot, text: str, *, user: str = OWNER, replies: int = 1) -> list[str]:
    """Run the command; what it answered the person (ephemerally), once `replies` came."""
    before = len(bot.fake.calls_to("response_url"))
    response = await bot.driver.command("/contract", text, user=user)
    assert response.status == 200
    await bot.fake.wait_for("response_url", count=before + replies, timeout=TIMEOUT)
    return response_texts(bot.fake)[before:]


def posted(fake: FakeSlack, channel: str) -> list[dict[str, Any]]:
    return list(fake.messages.get(channel, []))


def text_of(messages: list[dict[str, Any]]) -> str:
    return "\n".join(
        m.get("text", "") + "\n" + "\n".join(_block_text(b) for b in m.get("blocks") or [])
        for m in messages
    )


def shared_files(fake: FakeSlack, channel: str) -> dict[str, bytes]:
    files = [f for m in posted(fake, channel) for f in m.get("files") or []]
    return {f["name"]: fake.file_bytes(f["id"]) for f in files}


async def test_the_owner_gets_the_report_in_a_dm_with_its_pdf_and_csv(
    bot: Bot, example_contract: int
) -> None:
    said = await ask(bot, "report 2027Q1", replies=1)
    assert "Making the report for 2027 Q1 (1 contract)" in said[0]
    dm = bot.fake.dm_id(OWNER)
    await bot.fake.wait_for(
        "chat.postMessage", where=lambda c: c.args.get("channel") == dm, timeout=TIMEOUT
    )
    text = text_of(posted(bot.fake, dm))
    assert "North Star report: 2027 Q1" in text
    assert "Head of Platform" in text
    assert "Dana Leader" in text and "Sam Sponsor" in text and "Hana HR" in text
    assert not re.search(r"\bU0[A-Z0-9]{6,}", text), "no Slack user id is shown"
    assert "The portfolio" in text and "Check-ins" in text and "Risks" in text

    files = shared_files(bot.fake, dm)
    assert set(files) == {"northstar-report-2027Q1.pdf", "northstar-report-2027Q1.csv"}
    pdf = pypdf.PdfReader(io.BytesIO(files["northstar-report-2027Q1.pdf"]))
    assert len(pdf.pages) == 1 + 1
    pages = [page.extract_text() for page in pdf.pages]
    assert "2027 Q1" in pages[0] and "Contracts: 1" in pages[0]
    assert "Head of Platform" in pages[1] and "Dana Leader" in pages[1]
    assert not any(re.search(r"\bU0[A-Z0-9]{6,}", page) for page in pages)
    csv = files["northstar-report-2027Q1.csv"].decode()
    assert "Dana Leader" in csv and "U0LEAD001" not in csv
    for message in posted(bot.fake, dm):
        assert len(message.get("blocks") or []) <= 50


async def test_a_report_to_a_channel_says_where_it_went(bot: Bot, example_contract: int) -> None:
    said = await ask(bot, "report <#C0GENERAL1|general> 2027Q1", replies=2)
    assert any("is in <#C0GENERAL1>" in s for s in said)
    text = text_of(posted(bot.fake, "C0GENERAL1"))
    assert "North Star report: 2027 Q1" in text and "Dana Leader" in text
    assert set(shared_files(bot.fake, "C0GENERAL1")) == {
        "northstar-report-2027Q1.pdf",
        "northstar-report-2027Q1.csv",
    }


async def test_the_default_period_is_this_quarter(bot: Bot, example_contract: int) -> None:
    said = await ask(bot, "report")
    assert "2027 Q1" in said[0]  # the bot's clock is in March 2027


async def test_a_report_reader_the_governance_names_may_ask(bot: Bot) -> None:
    await import_contract(bot, READERS)
    said = await ask(bot, "report 2027Q1", user=VP)
    assert "Making the report for 2027 Q1" in said[0]


@pytest.mark.parametrize("user", [PEER, LEADER, "U0OUTSIDE"])
async def test_anyone_else_is_refused(bot: Bot, example_contract: int, user: str) -> None:
    said = await ask(bot, "report 2027Q1", user=user)
    assert "Only a contract's owner, and the report readers" in said[0]
    assert not bot.fake.calls_to("files.completeUploadExternal")
    assert not bot.fake.calls_to("chat.postMessage")


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("report 2027Q5", "is not a period"),
        ("report Q2", "is not a period"),
        ("report 2027Q1 2027Q2", "one period at most"),
        ("report #exec-reports", "can't find the channel"),
        ("report <#C0GENERAL1|general> <#C0OTHER01|other>", "one channel at most"),
        ("report <@U0LEAD001|dana>", "is not a period or a channel"),
        ("report 2026Q1", "None of the contracts you govern ran in 2026 Q1"),
    ],
)
async def test_bad_forms_get_a_clear_answer(
    bot: Bot, example_contract: int, text: str, answer: str
) -> None:
    said = await ask(bot, text)
    assert answer in said[0]
    assert not bot.fake.calls_to("files.getUploadURLExternal")
    assert not bot.fake.calls_to("chat.postMessage")


@pytest.mark.parametrize(
    ("private", "answer"),
    [
        (False, "I'm not in <#C0EXEC001>: add me with `/invite @North Star`"),
        (True, "I can't find <#C0EXEC001>, or it is private and I'm not in it"),
    ],
)
async def test_a_channel_the_bot_is_not_in_gets_nothing(
    bot: Bot, example_contract: int, private: bool, answer: str
) -> None:
    bot.fake.add_channel("C0EXEC001", name="exec", is_private=private, is_member=False)
    said = await ask(bot, "report 2027Q1 <#C0EXEC001|exec>", replies=2)
    assert answer in said[1]
    assert posted(bot.fake, "C0EXEC001") == []
    assert not bot.fake.calls_to("chat.postMessage")


async def test_an_unknown_channel_gets_a_clear_answer(bot: Bot, example_contract: int) -> None:
    said = await ask(bot, "report 2027Q1 <#C0NOWHERE|gone>", replies=2)
    assert "I can't find <#C0NOWHERE>" in said[1]
