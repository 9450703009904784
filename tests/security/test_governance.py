"""Nobody takes over someone else's contract: activation, people, amendments, requests.

Everything goes through signed requests into the real app and the fake Slack, except the
import, which runs the real importer (and the CLI once) against the same fake.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select

from bot.contracts import agreement as agreement_service
from bot.contracts.io import import_file, import_text
from bot.contracts.jobs import agreements_job
from bot.scheduler import JobRun
from storage.db import create_engine, session_factory, writing
from storage.migrate import pending_changes, upgrade
from storage.models import (
    Agreement,
    Amendment,
    AuditEvent,
    Contract,
    ContractStatus,
    ContractVersion,
    Feedback,
    FeedbackRequest,
)
from storage.queries.contracts import find_contract_for_leader
from tests.bot.cli.test_main import northstar
from tests.conftest import EXAMPLE_CONTRACT, Bot, import_example, response_texts
from tests.fakes import FakeSlack
from tests.handlers.test_agreement import click as agree_click
from tests.handlers.test_agreement import request_to as agreement_request_to
from tests.handlers.test_amendments import click, dm, propose, request_to
from tests.handlers.test_feedback_support import fast_sending, give
from tests.harness import BOT_TOKEN, START, filled_modal, running_bot
from tests.storage.old_schema import add_old

DATA = Path(__file__).resolve().parents[1] / "data"
LEADER, SPONSOR, OWNER, ESCALATION = "U0LEAD001", "U0SPON001", "U0HRBP001", "U0VP00001"
PEER1, PEER2, OUTSIDER = "U0PEER001", "U0PEER002", "U0OUTSIDE"
NORTH_STAR = "U0BOT0001"  # the fake's own bot user (auth.test)
OTHER_BOT, GONE, NOBODY = "U0OTHBOT1", "U0GONE001", "U0NOBODY9"
TITLE = "Head of Platform: FY2027 leadership contract"


@pytest.fixture(autouse=True)
def _strangers(fake_slack: FakeSlack) -> None:
    """Another app's bot user and a deactivated account, as Slack's users.info shows them."""
    fake_slack.add_user(OTHER_BOT, name="jirabot", real_name="Jira", is_bot=True)
    fake_slack.add_user(GONE, name="gone", real_name="Gone Person", deleted=True)


@pytest_asyncio.fixture
async def bot_on(fake_slack: FakeSlack, database_url: str) -> AsyncIterator[Bot]:
    """The real app on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set."""
    async with running_bot(fake_slack, database_url) as harness:
        yield harness


# --- helpers ---------------------------------------------------------------------------------


async def ask(bot: Bot, text: str, *, user: str, command: str = "/contract") -> str:
    before = len(bot.fake.calls_to("response_url"))
    response = await bot.driver.command(command, text, user=user)
    assert response.status == 200
    await bot.fake.wait_for("response_url", count=before + 1)
    return "\n".join(response_texts(bot.fake)[before:])


async def new_draft(bot: Bot, *, user: str, leader: str, sponsor: str, title: str) -> Any:
    """`/contract new` as `user`, the modal filled in and submitted."""
    before = len(bot.fake.calls_to("views.open"))
    await bot.driver.command("/contract", "new", user=user)
    await bot.fake.wait_for("views.open", count=before + 1)
    modal = await filled_modal(bot.fake, user)
    values = {
        "title": title,
        "leader": leader,
        "sponsor": sponsor,
        "period_start": "2027-04-05",
        "period_end": "2028-03-17",
        "checkin_weekday": "4",
        "checkin_time": "15:00",
    }
    return await bot.driver.submit_view(modal, values, user=user)


async def add_item(bot: Bot, user: str, kind: str, values: dict[str, str]) -> None:
    editor = await filled_modal(bot.fake, user)
    before = len(bot.fake.calls_to("views.push"))
    await bot.driver.block_action(
        user=user, action_id=f"contract_add_item:{kind}", view=editor, block_id="add_items"
    )
    await bot.fake.wait_for("views.push", count=before + 1)
    updates = len(bot.fake.calls_to("views.update"))
    response = await bot.driver.submit_view((await filled_modal(bot.fake, user)), values, user=user)
    assert response.json is None, response.json
    await bot.fake.wait_for("views.update", count=updates + 1)


async def complete_draft(bot: Bot, *, user: str, leader: str, sponsor: str, title: str) -> int:
    """A draft built in Slack with everything activation needs; its editor stays open."""
    response = await new_draft(bot, user=user, leader=leader, sponsor=sponsor, title=title)
    assert response.json["response_action"] == "update", response.json
    await add_item(bot, user, "expectation", {"kind": "impact", "text": "Ship it."})
    await add_item(
        bot,
        user,
        "activity",
        {
            "title": "Course",
            "modality": "formal_training",
            "due": "2027-06-01",
            "demonstration": "Shows it.",
        },
    )
    await add_item(
        bot,
        user,
        "indicator",
        {
            "name": "Score",
            "baseline": "1",
            "target": "9",
            "direction": "increase",
            "cadence": "monthly",
        },
    )
    await add_item(
        bot,
        user,
        "milestone",
        {"title": "Halfway", "due": "2027-06-30", "indicator": "I1", "threshold": "5"},
    )
    async with bot.sessions() as session:
        row = (await session.exec(select(Contract).where(Contract.title == title))).one()
    return row.id or 0


async def click_send(bot: Bot, user: str, editor: dict[str, Any]) -> Any:
    response = await bot.driver.block_action(
        user=user, action_id="contract_send", view=editor, block_id="activate"
    )
    assert response.status == 200
    return response


async def send_it(bot: Bot, user: str, *, replaces: bool = False) -> Any:
    """The editor's Send for agreement, and the pushed modal submitted."""
    before = len(bot.fake.calls_to("views.push"))
    await click_send(bot, user, bot.fake.last_view(user))
    await bot.fake.wait_for("views.push", count=before + 1)
    values = {"replaces": ["yes"]} if replaces else {}
    return await bot.driver.submit_view(bot.fake.last_view(user), values, user=user)


async def statuses(bot: Bot) -> dict[int, str]:
    async with bot.sessions() as session:
        rows = (await session.exec(select(Contract))).all()
    return {row.id or 0: row.status for row in rows}


async def count(bot: Bot, model: Any, *where: Any) -> int:
    async with bot.sessions() as session:
        return (await session.exec(select(func.count()).select_from(model).where(*where))).one()


def notice_of(view: dict[str, Any]) -> str:
    first = view["blocks"][0]
    return " ".join(e.get("text", "") for e in first.get("elements", []))


# --- activation: only agreement starts a contract --------------------------------------------


async def test_an_outsiders_draft_for_a_led_contract_is_not_activated_by_sending_it(
    bot: Bot,
) -> None:
    real = await import_example(bot)
    fake_id = await complete_draft(
        bot, user=OUTSIDER, leader=LEADER, sponsor=OUTSIDER, title="Dana, my way"
    )
    response = await send_it(bot, OUTSIDER, replaces=True)
    said = str(response.json["view"]["blocks"])
    assert TITLE not in said and SPONSOR not in said  # nothing of Dana's contract

    # Dana is asked, and decides: nothing starts, nothing closes, without her agreement.
    asked = await agreement_request_to(bot, LEADER)
    assert TITLE not in str(asked["blocks"])
    assert await statuses(bot) == {real: "active", fake_id: "draft"}
    assert await count(bot, ContractVersion, col(ContractVersion.contract_id) == fake_id) == 0
    async with bot.sessions() as session:
        found = await find_contract_for_leader(session=session, leader_id=LEADER)
    assert found is not None and found.id == real

    # Feedback to Dana still reaches her real contract, which her sponsor still reads.
    await give(bot, user=PEER1)
    async with bot.sessions() as session:
        given = (await session.exec(select(Feedback))).one()
    assert given.contract_id == real
    received = await ask(bot, f"received <@{LEADER}|dana>", user=SPONSOR, command="/feedback")
    assert "Q2 roadmap review" in received
    refused = await ask(bot, f"received <@{LEADER}|dana>", user=OUTSIDER, command="/feedback")
    assert "Q2 roadmap review" not in refused


async def test_someone_not_on_the_draft_cannot_send_it_with_a_forged_click(bot: Bot) -> None:
    draft = await complete_draft(bot, user=SPONSOR, leader=PEER2, sponsor=SPONSOR, title="Raj")
    editor = copy.deepcopy(bot.fake.last_view(SPONSOR))
    await click_send(bot, OUTSIDER, editor)
    (sent,) = await bot.fake.wait_for(
        "chat.postMessage", where=lambda c: c.response.get("channel") == bot.fake.dm_id(OUTSIDER)
    )
    assert "Only the leader, sponsor or owner" in sent.args["text"]
    assert await statuses(bot) == {draft: "draft"}
    async with bot.sessions() as session:
        row = await session.get(Contract, draft)
    assert row is not None and row.agreement_sent_at is None


async def test_the_sponsor_sends_and_the_leaders_agreement_activates(bot: Bot) -> None:
    draft = await complete_draft(bot, user=SPONSOR, leader=PEER2, sponsor=SPONSOR, title="Raj")
    await send_it(bot, SPONSOR)
    assert await statuses(bot) == {draft: "draft"}
    await agree_click(bot, await agreement_request_to(bot, PEER2), "agree", user=PEER2)
    assert await statuses(bot) == {draft: "active"}
    assert await count(bot, ContractVersion) == 1


async def open_editor(bot: Bot, user: str) -> dict[str, Any]:
    before = len(bot.fake.calls_to("views.open"))
    await bot.driver.command("/contract", "edit", user=user)
    await bot.fake.wait_for("views.open", count=before + 1)
    return await filled_modal(bot.fake, user)


async def two_drafts_for_one_leader(bot: Bot, *, for_agreement: bool = False) -> tuple[int, int]:
    """Two complete drafts for Raj, one sponsored by Sam, the other by Hana."""
    data = yaml.safe_load((DATA / "minimal.yml").read_text())
    first = {**data, "leader": PEER2, "sponsor": SPONSOR, "title": "Raj by Sam"}
    second = {**data, "leader": PEER2, "sponsor": OWNER, "title": "Raj by Hana"}
    results, problems = await import_text(
        yaml.safe_dump_all([first, second]),
        filename="drafts.yml",
        sessions=bot.sessions,
        client=bot.app.client,
        draft=True,
        for_agreement=for_agreement,
        now=bot.clock.now(),
    )
    assert problems == []
    return results[0].contract_id, results[1].contract_id


async def raj_agrees_to_both(bot: Bot) -> None:
    """The job sends the drafts' DMs; Raj agrees to both, leaving each sponsor's last."""
    await agreements_job(JobRun(services=bot.services, client=bot.app.client))
    await agreement_request_to(bot, PEER2, count=2)
    for message in [m for m in dm(bot, PEER2) if "For your agreement" in str(m["blocks"])]:
        await agree_click(bot, copy.deepcopy(message), "agree", user=PEER2)


async def test_two_last_agreements_at_once_leave_one_active_and_one_waiting(
    bot_on: Bot,
) -> None:
    bot = bot_on
    first, second = await two_drafts_for_one_leader(bot, for_agreement=True)
    await raj_agrees_to_both(bot)
    by_sam = await agreement_request_to(bot, SPONSOR)
    by_hana = await agreement_request_to(bot, OWNER)
    await asyncio.gather(
        agree_click(bot, by_sam, "agree", user=SPONSOR),
        agree_click(bot, by_hana, "agree", user=OWNER),
    )
    found = await statuses(bot)
    assert sorted(found.values()) == ["active", "draft"]
    winner = next(i for i, s in found.items() if s == "active")
    loser = first if winner == second else second
    assert await count(bot, ContractVersion, col(ContractVersion.contract_id) == loser) == 0
    assert (
        await count(
            bot,
            AuditEvent,
            col(AuditEvent.action) == "contract.activated",
            col(AuditEvent.contract_id) == loser,
        )
        == 0
    )
    assert "went wrong" not in " ".join(response_texts(bot.fake))


async def test_a_lost_race_is_a_clear_refusal_with_nothing_written(
    bot_on: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unique index catches what the check could not see (another transaction's commit
    between check and write): simulated by hiding the winner from the check."""
    bot = bot_on
    first, second = await two_drafts_for_one_leader(bot, for_agreement=True)
    await raj_agrees_to_both(bot)
    await agree_click(bot, await agreement_request_to(bot, SPONSOR), "agree", user=SPONSOR)
    assert (await statuses(bot))[first] == "active"

    async def sees_nothing(**_: Any) -> None:
        return None

    monkeypatch.setattr(agreement_service, "active_contract_for_leader", sees_nothing)
    said = await agree_click(
        bot, await agreement_request_to(bot, OWNER), "agree", user=OWNER, told=True
    )
    assert "saved at the same moment; nothing was recorded" in said
    assert await statuses(bot) == {first: "active", second: "draft"}
    assert await count(bot, ContractVersion, col(ContractVersion.contract_id) == second) == 0
    assert await count(bot, Agreement, col(Agreement.contract_id) == second) == 1  # Raj's


async def test_the_database_holds_one_active_contract_per_leader(bot_on: Bot) -> None:
    first, second = await two_drafts_for_one_leader(bot_on)
    async with bot_on.sessions() as session:
        await writing(session)
        for contract_id in (first, second):
            row = await session.get(Contract, contract_id)
            assert row is not None
            row.status = ContractStatus.active
            session.add(row)
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_an_import_does_not_make_a_second_active_contract(bot: Bot) -> None:
    await import_example(bot)
    data = yaml.safe_load(EXAMPLE_CONTRACT.read_text())
    data["title"] = "A second one for Dana"
    results, problems = await import_text(
        yaml.safe_dump(data),
        filename="second.yml",
        sessions=bot.sessions,
        client=bot.app.client,
        draft=False,
        now=bot.clock.now(),
    )
    assert results == []
    assert problems == [
        f"leader: {LEADER} already has an active contract ({TITLE!r}), and a leader has one "
        "active contract at a time; import this one with --draft"
    ]
    assert await count(bot, Contract) == 1


# --- people: real, active humans only ---------------------------------------------------------


@pytest.mark.parametrize(
    ("leader", "sponsor", "expected"),
    [
        (NORTH_STAR, GONE, {"leader": "North Star itself", "sponsor": "deactivated"}),
        (NOBODY, OTHER_BOT, {"leader": "not a member of this workspace", "sponsor": "a bot"}),
        (PEER2, "USLACKBOT", {"sponsor": "a bot"}),
    ],
)
async def test_the_draft_modal_refuses_bots_deactivated_and_unknown_people(
    bot: Bot, leader: str, sponsor: str, expected: dict[str, str]
) -> None:
    response = await new_draft(bot, user=OUTSIDER, leader=leader, sponsor=sponsor, title="X")
    assert response.json["response_action"] == "errors"
    errors = response.json["errors"]
    assert set(errors) == set(expected)
    for block, words in expected.items():
        assert words in errors[block]
    assert await count(bot, Contract) == 0


def people_file(tmp_path: Path, **governance: Any) -> Path:
    data = yaml.safe_load(EXAMPLE_CONTRACT.read_text())
    data["governance"].update(governance.pop("governance", {}))
    data.update(governance)
    path = tmp_path / "contract.yml"
    path.write_text(yaml.safe_dump(data))
    return path


async def test_an_import_refuses_bots_deactivated_and_unknown_people_with_their_paths(
    bot: Bot, tmp_path: Path
) -> None:
    path = people_file(
        tmp_path,
        governance={"approvers": [SPONSOR, NORTH_STAR], "escalation": [GONE], "owner": NOBODY},
        feedback={"reviewers": [PEER1, OTHER_BOT]},
    )
    results, problems = await import_file(
        path, sessions=bot.sessions, client=bot.app.client, draft=False, now=bot.clock.now()
    )
    assert results == []
    assert sorted(problems) == sorted(
        [
            f"governance.owner: {NOBODY} is not a member of this workspace",
            f"governance.approvers[1]: {NORTH_STAR} is North Star itself, not a person",
            f"governance.escalation[0]: {GONE} is a deactivated account",
            f"feedback.reviewers[1]: {OTHER_BOT} is a bot, not a person",
        ]
    )
    assert await count(bot, Contract) == 0


async def test_an_import_refuses_a_leader_who_sponsors_themselves(bot: Bot, tmp_path: Path) -> None:
    path = people_file(tmp_path, sponsor="dana@example.com")
    results, problems = await import_file(
        path, sessions=bot.sessions, client=bot.app.client, draft=False, now=bot.clock.now()
    )
    assert results == []
    assert problems == [f"sponsor: must not be the leader ({LEADER}): choose another person"]


async def test_the_cli_import_exits_1_on_a_bot_leader(
    fake_slack: FakeSlack, sqlite_url: str, tmp_path: Path
) -> None:
    path = people_file(tmp_path, leader=OTHER_BOT)
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": fake_slack.api_url,
        "DATABASE_URL": sqlite_url,
        "LOG_LEVEL": "WARNING",
    }
    run = await northstar("contract", "import", str(path), cwd=tmp_path, env=env)
    assert run.code == 1
    assert f"leader: {OTHER_BOT} is a bot, not a person" in run.err
    assert "nothing was written" in run.err


# --- request-feedback: real people, a bounded number a day -------------------------------------


async def test_request_feedback_asks_only_real_active_people_and_says_who_was_skipped(
    bot: Bot,
) -> None:
    fast_sending(bot)
    await import_example(bot)
    said = await ask(
        bot,
        f"request-feedback <@{PEER1}|pia> <@{OTHER_BOT}|jira> <@{GONE}|gone> <@{NOBODY}|x>",
        user=LEADER,
    )
    assert f"Asked <@{PEER1}> for feedback" in said
    assert f"<@{OTHER_BOT}> is a bot, not a person" in said
    assert f"<@{GONE}> is a deactivated account" in said
    assert f"<@{NOBODY}> is not a member of this workspace" in said
    async with bot.sessions() as session:
        rows = (await session.exec(select(FeedbackRequest))).all()
    assert [r.reviewer_id for r in rows] == [PEER1]
    await bot.fake.wait_for("chat.postMessage", where=lambda c: c.args.get("channel") == PEER1)
    posted = {c.args.get("channel") for c in bot.fake.calls_to("chat.postMessage")}
    assert posted & {OTHER_BOT, GONE, NOBODY} == set()

    nobody = await ask(bot, f"request-feedback <@{NORTH_STAR}|northstar>", user=LEADER)
    assert nobody == f"Nobody was asked: <@{NORTH_STAR}> is North Star itself, not a person."
    assert await count(bot, FeedbackRequest) == 1


async def test_request_feedback_asks_at_most_20_people_a_day(bot: Bot) -> None:
    fast_sending(bot)
    await import_example(bot)
    people = [f"U0MANY{n:04d}" for n in range(25)]
    for n, user_id in enumerate(people):
        bot.fake.add_user(user_id, name=f"many{n}")

    def mentions(users: list[str]) -> str:
        return " ".join(f"<@{u}|x>" for u in users)

    assert "Asked" in await ask(bot, f"request-feedback {mentions(people[:15])}", user=LEADER)
    refused = await ask(bot, f"request-feedback {mentions(people[15:21])}", user=LEADER)
    assert "at most 20 people" in refused and "you can ask 5 more now" in refused
    assert await count(bot, FeedbackRequest) == 15
    assert "Asked" in await ask(bot, f"request-feedback {mentions(people[15:20])}", user=LEADER)
    refused = await ask(bot, f"request-feedback {mentions(people[20:21])}", user=LEADER)
    assert "at most 20 people" in refused and "once a day has passed" in refused
    assert await count(bot, FeedbackRequest) == 20

    # The sponsor has a bound of their own; and a day later the leader may ask again.
    assert "Asked" in await ask(bot, f"request-feedback {mentions(people[20:21])}", user=SPONSOR)
    bot.clock.advance(timedelta(hours=24, seconds=1))
    assert "Asked" in await ask(bot, f"request-feedback {mentions(people[21:22])}", user=LEADER)
    assert await count(bot, FeedbackRequest) == 22


# --- amendments: the proposer never approves alone -------------------------------------------


async def test_the_sponsors_own_proposal_goes_to_the_owner(bot: Bot) -> None:
    await import_example(bot)  # approvers: the sponsor alone; owner: Hana
    response = await propose(bot, values={"target": "28"}, user=SPONSOR)
    assert response.json["response_action"] == "update"
    request = await request_to(bot, OWNER)
    assert dm(bot, SPONSOR) == []  # no request to approve their own change
    await click(bot, request, "approve", user=SPONSOR)
    await bot.fake.wait_for("response_url")
    said = response_texts(bot.fake)[-1]  # the sponsor reads the contract: told who decides
    assert (
        said == f"Only this contract's approvers (<@{OWNER}>) can approve or reject amendment #1."
    )
    async with bot.sessions() as session:
        assert (await session.exec(select(Amendment))).one().status == "pending"
    await click(bot, request, "approve", user=OWNER)
    told = await request_to(bot, SPONSOR)  # the proposer hears the outcome
    assert "was approved and applied" in told["text"]
    async with bot.sessions() as session:
        assert (await session.exec(select(Amendment))).one().status == "applied"


async def test_a_sole_approver_without_owner_or_escalation_cannot_propose_alone(
    bot: Bot,
) -> None:
    data = yaml.safe_load((DATA / "minimal.yml").read_text())  # approvers default to the sponsor
    _, problems = await import_text(
        yaml.safe_dump(data),
        filename="minimal.yml",
        sessions=bot.sessions,
        client=bot.app.client,
        draft=False,
        now=bot.clock.now(),
    )
    assert problems == []
    said = await ask(bot, f"amend <@{LEADER}|dana>", user=SPONSOR)
    assert "Nobody but you could approve a change you propose" in said
    assert bot.fake.calls_to("views.open") == []
    # The leader still proposes, and the sponsor decides.
    response = await propose(bot, "indicator:I1", {"target": "14"}, user=LEADER)
    assert response.json["response_action"] == "update"
    await request_to(bot, SPONSOR)


# --- refusals to outsiders name nothing of the contract ----------------------------------------


async def test_refusals_to_outsiders_name_no_approver_leader_detail_or_milestone(
    bot: Bot,
) -> None:
    await import_example(bot)
    await propose(bot, "milestone:M1", {"due": "2027-06-30"})
    request = await request_to(bot, SPONSOR)
    before = len(bot.fake.calls_to("response_url"))
    await click(bot, request, "approve", user=OUTSIDER)
    await click(bot, request, "reject", user=OUTSIDER)
    await bot.fake.wait_for("response_url", count=before + 2)
    said = response_texts(bot.fake)[before:]
    said.append(await ask(bot, f"amend <@{LEADER}|dana>", user=OUTSIDER))
    said.append(await ask(bot, f"summary <@{LEADER}|dana>", user=OUTSIDER))
    said.append(await ask(bot, f"history <@{LEADER}|dana>", user=OUTSIDER))
    said.append(await ask(bot, f"activate <@{LEADER}|dana>", user=OUTSIDER))
    said.append(await ask(bot, f"send <@{LEADER}|dana>", user=OUTSIDER))
    for text in said:
        for secret in (SPONSOR, OWNER, ESCALATION, "M1", TITLE):
            assert secret not in text, (secret, text)


# --- the migration: databases that already hold several active contracts for a leader -----


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own, for upgrading step by step."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    import asyncpg

    base = str(request.getfixturevalue("postgres_server_url"))
    admin = base.replace("postgresql+asyncpg", "postgresql")
    name = f"northstar_migrate_{uuid.uuid4().hex[:10]}"

    async def execute(sql: str) -> None:
        connection = await asyncpg.connect(admin)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    yield base.rsplit("/", 1)[0] + "/" + name
    asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


OLD_CONTRACT = [
    "title",
    "leader_id",
    "sponsor_id",
    "status",
    "version",
    "mission",
    "period_start",
    "period_end",
    "checkin_weekday",
    "checkin_time",
    "reminder_hours",
    "anonymity_threshold",
    "digest_cadence",
    "digest_weekday",
    "digest_time",
    "reporting",
    "created_at",
    "updated_at",
]


async def test_the_upgrade_keeps_the_contract_lookups_used_and_returns_the_rest_to_draft(
    unmigrated_url: str,
) -> None:
    await upgrade(unmigrated_url, "0003_feedback")
    engine = create_engine(unmigrated_url)
    sessions = session_factory(engine)
    try:
        start = START
        async with sessions() as session:
            await writing(session)
            for n, (leader, edited) in enumerate(
                [(LEADER, 1), (LEADER, 3), (LEADER, 2), (PEER2, 1)], start=1
            ):
                await add_old(
                    session,
                    Contract(
                        title=f"Contract {n}",
                        leader_id=leader,
                        sponsor_id=SPONSOR,
                        status=ContractStatus.active,
                        version=1,
                        mission="",
                        period_start=start.date(),
                        period_end=start.date() + timedelta(days=300),
                        checkin_weekday=4,
                        checkin_time="15:00",
                        reminder_hours=24,
                        anonymity_threshold=3,
                        digest_cadence="monthly",
                        digest_weekday=0,
                        digest_time="09:00",
                        reporting="",
                        created_at=start,
                        updated_at=start + timedelta(days=edited),
                    ),
                )
            await session.commit()
        await upgrade(unmigrated_url)
        async with sessions() as session:
            rows = (await session.exec(select(Contract).order_by(col(Contract.id)))).all()
            events = (await session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))).all()
    finally:
        await engine.dispose()
    # Dana's most recently updated one (2) is what every lookup found; it stays active.
    assert [(r.title, r.status) for r in rows] == [
        ("Contract 1", "draft"),
        ("Contract 2", "active"),
        ("Contract 3", "draft"),
        ("Contract 4", "active"),
    ]
    assert [(e.contract_id, e.action, e.detail["active_contract"]) for e in events] == [
        (3, "contract.returned_to_draft", 2),
        (1, "contract.returned_to_draft", 2),
    ]
    assert await pending_changes(unmigrated_url) == []
