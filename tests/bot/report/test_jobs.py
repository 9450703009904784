"""The `reports` job: each governance's report posted once per period and audience, at the
audience's morning, across reruns and restarts; its files in the message's thread."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bot.core.clock import ManualClock
from bot.services import Services
from tests.bot.checkins.test_support import run_job, run_job_with, virtual_time
from tests.handlers.test_report import import_contract, posted, shared_files, text_of
from tests.harness import Bot

CHANNEL = (
    "  reporting: Quarterly summary to the executive team\n",
    "  report:\n    cadence: quarterly\n    channel: C0GENERAL1\n",
)
READER_MONTHLY = (
    "  reporting: Quarterly summary to the executive team\n",
    "  report:\n    cadence: monthly\n    readers: [U0VP00001]\n",
)


def at(text: str, zone: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def reports_in(bot: Bot, channel: str) -> list[str]:
    return [m["text"] for m in posted(bot.fake, channel) if "North Star report:" in m["text"]]


async def test_the_quarter_report_goes_to_its_channel_once_at_the_morning_after(
    bot: Bot,
) -> None:
    virtual_time(bot.services)
    await import_contract(bot, CHANNEL)
    bot.clock.set(at("2027-04-01 08:50", "Europe/Berlin"))
    await run_job(bot, "reports")
    assert reports_in(bot, "C0GENERAL1") == []  # before 09:00 in the workspace's zone

    bot.clock.set(at("2027-04-01 09:05", "Europe/Berlin"))
    await run_job(bot, "reports")
    assert reports_in(bot, "C0GENERAL1") == [
        "North Star report: 2027 Q1 (1 Jan 2027 – 31 Mar 2027)"
    ]
    text = text_of(posted(bot.fake, "C0GENERAL1"))
    assert "Dana Leader" in text and "U0LEAD001" not in text
    first = next(m for m in posted(bot.fake, "C0GENERAL1") if m.get("blocks"))
    files = [m for m in posted(bot.fake, "C0GENERAL1") if m.get("files")]
    assert len(files) == 1 and files[0].get("thread_ts") == first["ts"]
    assert set(shared_files(bot.fake, "C0GENERAL1")) == {
        "northstar-report-2027Q1.pdf",
        "northstar-report-2027Q1.csv",
    }

    # Run again, and as a restarted bot (new services on the same database): nothing more.
    await run_job(bot, "reports")
    restarted = Services(
        settings=bot.services.settings,
        sessions=bot.services.sessions,
        clock=ManualClock(bot.clock.now()),
    )
    await run_job_with(restarted, bot.app.client, "reports")
    assert len(reports_in(bot, "C0GENERAL1")) == 1
    assert len([m for m in posted(bot.fake, "C0GENERAL1") if m.get("files")]) == 1

    # The next quarter's report goes when that quarter has ended.
    bot.clock.set(at("2027-07-01 09:30", "Europe/Berlin"))
    await run_job(bot, "reports")
    assert len(reports_in(bot, "C0GENERAL1")) == 2
    assert "2027 Q2" in reports_in(bot, "C0GENERAL1")[-1]


async def test_a_reader_gets_the_month_report_at_their_own_morning(bot: Bot) -> None:
    virtual_time(bot.services)
    await import_contract(bot, READER_MONTHLY)
    dm = bot.fake.dm_id("U0VP00001")  # Victor is in New York
    bot.clock.set(at("2027-04-01 09:30", "Europe/Berlin"))  # 03:30 in New York
    await run_job(bot, "reports")
    assert reports_in(bot, dm) == []

    bot.clock.set(at("2027-04-01 09:05", "America/New_York"))
    await run_job(bot, "reports")
    assert reports_in(bot, dm) == ["North Star report: March 2027 (1 Mar 2027 – 31 Mar 2027)"]
    assert set(shared_files(bot.fake, dm)) == {
        "northstar-report-2027-03.pdf",
        "northstar-report-2027-03.csv",
    }
    await run_job(bot, "reports")
    assert len(reports_in(bot, dm)) == 1


def owner_dms(bot: Bot) -> list[str]:
    return [m["text"] for m in posted(bot.fake, bot.fake.dm_id("U0HRBP001"))]


async def test_the_owner_hears_once_when_the_report_cannot_be_posted(bot: Bot) -> None:
    """A private channel the bot is not in: nothing is posted, and the contract's owner is
    told once, however many runs."""
    virtual_time(bot.services)
    bot.fake.add_channel("C0SECRET01", name="board", is_private=True, is_member=False)
    await import_contract(bot, (CHANNEL[0], CHANNEL[1].replace("C0GENERAL1", "C0SECRET01")))
    bot.clock.set(at("2027-04-01 09:05", "Europe/Berlin"))
    await run_job(bot, "reports")
    await run_job(bot, "reports")
    assert reports_in(bot, "C0SECRET01") == []
    [told] = [t for t in owner_dms(bot) if "could not be posted" in t]
    assert "The 2027 Q1 report could not be posted in <#C0SECRET01> (channel_not_found)" in told
    assert "/invite @North Star" in told


async def test_the_owner_hears_once_when_the_files_cannot_be_shared(bot: Bot) -> None:
    """A public channel the bot is not in: the message goes (chat:write.public), its files
    cannot; the owner is told once how to get them."""
    virtual_time(bot.services)
    bot.fake.add_channel("C0BOARD001", name="board", is_member=False)
    await import_contract(bot, (CHANNEL[0], CHANNEL[1].replace("C0GENERAL1", "C0BOARD001")))
    bot.clock.set(at("2027-04-01 09:05", "Europe/Berlin"))
    await run_job(bot, "reports")
    assert len(reports_in(bot, "C0BOARD001")) == 1
    assert shared_files(bot.fake, "C0BOARD001") == {}
    bot.clock.set(at("2027-04-01 09:20", "Europe/Berlin"))  # the files are tried again
    await run_job(bot, "reports")
    [told] = [t for t in owner_dms(bot) if "could not be shared" in t]
    assert "The 2027 Q1 report is in <#C0BOARD001>, but its PDF and CSV" in told
    assert "`/contract report 2027Q1`" in told
