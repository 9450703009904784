"""Feedback services on SQLite and PostgreSQL: windows, the release, the cap, withdrawing;
and the pure parts: request arguments, grouping, the leader's release message."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import col, select

from bot.core.calendar import feedback_window
from bot.core.permissions import Refusal
from bot.feedback.blocks import (
    Entry,
    Shown,
    build_feedback_modal,
    build_mine_modal,
    build_release_message,
    fit_message,
    grouped,
)
from bot.feedback.forms import parse_request_args
from bot.feedback.model import ANONYMOUS_WEEKLY_CAP, RequestArgs, midnight
from bot.feedback.service import (
    give_feedback,
    release_held,
    release_plan,
    target_of,
    withdraw,
)
from bot.privacy.keys import author_hash
from storage.db import SessionFactory, writing
from storage.models import AuditEvent, Contract, Expectation, Feedback

KEY = b"k" * 32
NOW = datetime(2027, 3, 10, 14, 30, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(
    ("cadence", "day", "window"),
    [
        ("weekly", date(2027, 3, 10), "2027-W10"),
        ("biweekly", date(2027, 3, 10), "2027-W09"),
        ("biweekly", date(2027, 3, 1), "2027-W09"),
        ("biweekly", date(2027, 3, 15), "2027-W11"),
        ("monthly", date(2027, 3, 31), "2027-03"),
        ("quarterly", date(2027, 3, 31), "2027-Q1"),
        (None, date(2027, 4, 1), "2027-Q2"),
        ("weekly", date(2027, 1, 1), "2026-W53"),
    ],
)
def test_feedback_windows(cadence: str | None, day: date, window: str) -> None:
    assert feedback_window(cadence, day) == window


def test_midnight_keeps_only_the_utc_day() -> None:
    late = datetime(2027, 3, 10, 23, 59, 59, 999, tzinfo=UTC)
    assert midnight(late) == datetime(2027, 3, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["<@U1|a>", "<@U2>", "e2"], RequestArgs(["U1", "U2"], "E2", None)),
        (["<@U1|a>", "<@U1|a>"], RequestArgs(["U1"], None, None)),
        (["<@U1|a>", "for", "<@U9|dana>"], RequestArgs(["U1"], None, "U9")),
    ],
)
def test_request_arguments(words: list[str], expected: RequestArgs) -> None:
    assert parse_request_args(words) == expected


@pytest.mark.parametrize("words", [["@ana"], ["<@U1>", "for", "dana"], ["<@U1>", "E2x"]])
def test_request_arguments_that_are_not_understood(words: list[str]) -> None:
    assert isinstance(parse_request_args(words), Refusal)


def shown(key: str | None, behaviour: str) -> Shown:
    return Shown(key, "strength", "s", behaviour, "i")


def test_grouped_follows_the_contracts_order_and_puts_loose_entries_last() -> None:
    entries = [shown(None, "n"), shown("E2", "b"), shown("E1", "a"), shown("E9", "z")]
    groups = grouped(entries, ["E1", "E2"])
    assert [key for key, _ in groups] == ["E1", "E2", "E9", None]


def test_grouped_shuffles_within_a_group() -> None:
    entries = [shown("E1", str(n)) for n in range(30)]
    orders = {
        tuple(e.behaviour for e in grouped(entries, ["E1"], shuffle=random.Random(seed))[0][1])
        for seed in range(5)
    }
    assert len(orders) > 1


def test_the_release_message_has_no_authors_or_dates_and_fits_a_message() -> None:
    entries = [shown("E1", f"Behaviour number {n}") for n in range(80)]
    blocks = build_release_message(
        entries, expectations=[("E1", "Own the roadmap")], threshold=3, rng=random.Random(1)
    )
    fitted = fit_message(blocks, "more elsewhere")
    assert len(fitted) <= 50
    for block in fitted:
        block.to_dict()  # slack_sdk's validation
    text = str([b.to_dict() for b in fitted])
    assert "2027" not in text and "80 entries" in text


def test_a_long_entry_is_not_cut() -> None:
    entry = Shown("E1", "development", "s" * 1000, "b" * 2000, "i" * 1000)
    blocks = build_release_message(
        [entry], expectations=[("E1", "x")], threshold=3, rng=random.Random(1)
    )
    text = "".join(str(b.to_dict()) for b in blocks)
    assert "b" * 2000 in text and "i" * 1000 in text and "s" * 1000 in text


def test_the_modal_and_the_list_validate() -> None:
    from bot.feedback.blocks import MineRow, Target

    target = Target(1, "U1", "T" * 300, 3, tuple((f"E{n}", "x" * 300) for n in range(120)))
    modal = build_feedback_modal(target, first_words="w" * 5000, expectation_key="E7")
    data = modal.to_dict()
    assert len(data["title"]["text"]) <= 24
    rows = [
        MineRow(n, "U1", "E1", "strength", "b" * 500, True, False, date(2027, 3, 1))
        for n in range(60)
    ]
    assert len(build_mine_modal(rows).to_dict()["blocks"]) <= 100


# --- on the database ---------------------------------------------------------------------


async def contract(sessions: SessionFactory, *, threshold: int = 3) -> int:
    async with sessions() as session:
        await writing(session)
        row = Contract(
            title="Head of Platform",
            leader_id="U0LEAD001",
            sponsor_id="U0SPON001",
            status="active",
            period_start=date(2027, 1, 4),
            period_end=date(2027, 12, 17),
            feedback_cadence="monthly",
            anonymity_threshold=threshold,
        )
        session.add(row)
        await session.flush()
        session.add(Expectation(contract_id=row.id or 0, key="E1", kind="impact", text="Own"))
        await session.commit()
        return row.id or 0


ENTRY = Entry(
    "E1", "strength", "At the review", "She asked every lead first.", "Risks", True, "peer"
)


async def give(
    sessions: SessionFactory,
    contract_id: int,
    giver: str,
    *,
    now: datetime = NOW,
    relation: str | None = "peer",
    anonymous: bool = True,
    polarity: str = "strength",
) -> object:
    async with sessions() as session:
        await writing(session)
        target = await target_of(session=session, contract_id=contract_id)
        assert target is not None
        return await give_feedback(
            session=session,
            target=target,
            entry=replace(ENTRY, relation=relation, anonymous=anonymous, polarity=polarity),
            giver=giver,
            key=KEY,
            request_id=None,
            now=now,
        )


async def release(sessions: SessionFactory, contract_id: int, now: datetime, **kw: bool) -> object:
    async with sessions() as session:
        await writing(session)
        row = await session.get(Contract, contract_id)
        assert row is not None
        return await release_held(session=session, contract=row, now=now, **kw)


async def held(sessions: SessionFactory) -> list[Feedback]:
    async with sessions() as session:
        return list((await session.exec(select(Feedback).order_by(col(Feedback.id)))).all())


async def test_an_anonymous_entry_keeps_a_keyed_hash_and_the_day_only(
    sessions: SessionFactory,
) -> None:
    contract_id = await contract(sessions)
    await give(sessions, contract_id, "U0PEER001")
    [row] = await held(sessions)
    assert row.author_id is None and row.request_id is None
    assert row.author_hash == author_hash(KEY, user="U0PEER001", contract_id=contract_id)
    assert row.created_at == datetime(2027, 3, 10, tzinfo=UTC)
    assert row.window_key == "2027-03"
    async with sessions() as session:
        assert (await session.exec(select(AuditEvent))).all() == []


async def test_the_release_waits_for_distinct_authors_and_a_later_day(
    sessions: SessionFactory,
) -> None:
    contract_id = await contract(sessions)
    await give(sessions, contract_id, "U1")
    await give(sessions, contract_id, "U1")
    await give(sessions, contract_id, "U2")
    tomorrow = NOW + timedelta(days=1)
    assert await release(sessions, contract_id, tomorrow) is None  # two people only
    await give(sessions, contract_id, "U3", now=tomorrow)
    assert await release(sessions, contract_id, tomorrow) is None  # the third came today
    released = await release(sessions, contract_id, tomorrow + timedelta(days=1))
    assert released == tomorrow + timedelta(days=1)
    assert {r.released_at for r in await held(sessions)} == {released}
    assert await release(sessions, contract_id, tomorrow + timedelta(days=2)) is None


async def test_force_releases_on_the_same_day(sessions: SessionFactory) -> None:
    contract_id = await contract(sessions, threshold=2)
    await give(sessions, contract_id, "U1")
    await give(sessions, contract_id, "U2")
    assert await release(sessions, contract_id, NOW, force=True) == NOW


async def test_held_entries_are_carried_into_the_current_window(
    sessions: SessionFactory,
) -> None:
    contract_id = await contract(sessions)
    await give(sessions, contract_id, "U1")
    await give(sessions, contract_id, "U2", now=NOW + timedelta(days=40))
    assert await release(sessions, contract_id, NOW + timedelta(days=41)) is None
    assert {r.window_key for r in await held(sessions)} == {"2027-04"}
    await give(sessions, contract_id, "U3", now=NOW + timedelta(days=41))
    assert await release(sessions, contract_id, NOW + timedelta(days=42)) is not None
    assert all(r.released_at for r in await held(sessions))


async def test_two_replicas_release_once(sessions: SessionFactory) -> None:
    contract_id = await contract(sessions)
    for user in ("U1", "U2", "U3"):
        await give(sessions, contract_id, user)
    later = NOW + timedelta(days=1)
    results = await asyncio.gather(*(release(sessions, contract_id, later) for _ in range(4)))
    assert results.count(later) == 1
    async with sessions() as session:
        events = (await session.exec(select(AuditEvent))).all()
    assert [e.action for e in events] == ["feedback.released"]


async def test_the_weekly_cap_counts_one_author_on_one_contract(
    sessions: SessionFactory,
) -> None:
    contract_id = await contract(sessions)
    for _ in range(ANONYMOUS_WEEKLY_CAP):
        assert not isinstance(await give(sessions, contract_id, "U1"), Refusal)
    refused = await give(sessions, contract_id, "U1")
    assert isinstance(refused, Refusal) and refused.field == "anonymity"
    assert not isinstance(await give(sessions, contract_id, "U2"), Refusal)
    monday = datetime(2027, 3, 15, 0, 1, tzinfo=UTC)
    assert not isinstance(await give(sessions, contract_id, "U1", now=monday), Refusal)


async def test_only_the_author_withdraws_an_entry(sessions: SessionFactory) -> None:
    contract_id = await contract(sessions)
    await give(sessions, contract_id, "U1")
    [row] = await held(sessions)
    async with sessions() as session:
        await writing(session)
        assert not await withdraw(
            session=session, user="U2", key=KEY, feedback_id=row.id or 0, now=NOW
        )
        assert await withdraw(session=session, user="U1", key=KEY, feedback_id=row.id or 0, now=NOW)
        # An anonymous entry's withdrawal leaves no audit event (issue: traces).
        assert (await session.exec(select(AuditEvent))).all() == []
    assert await held(sessions) == []


# --- the per-group rule, as a pure function ------------------------------------------------


def held_entry(n: int, relation: str | None, author: str, *, day: int = 9) -> Feedback:
    return Feedback(
        id=n,
        contract_id=1,
        polarity="strength",
        anonymous=True,
        author_hash=author,
        relation=relation,
        created_at=datetime(2027, 3, day, tzinfo=UTC),
    )


def planned(entries: list[Feedback], **kw: bool) -> dict[str, set[int | None]]:
    plan = release_plan(entries, threshold=3, now=NOW, **kw)
    return {group: {e.id for e in members} for group, members in plan}


def test_each_group_is_released_on_its_own_and_a_lone_one_is_held() -> None:
    peers = [held_entry(n, "peer", f"p{n}") for n in range(3)]
    assert planned([*peers, held_entry(9, "direct_report", "r1")]) == {"peer": {0, 1, 2}}


def test_small_groups_merge_into_others_only_when_together_they_meet_it() -> None:
    report, stake = held_entry(1, "direct_report", "r1"), held_entry(2, "stakeholder", "s1")
    assert planned([report, stake]) == {}
    third = held_entry(3, "stakeholder", "s2")
    assert planned([report, stake, third]) == {"others": {1, 2, 3}}
    # One person in two groups (a relation stated twice) is still one person.
    same = held_entry(4, "peer", "r1")
    assert planned([report, stake, same]) == {}


def test_padding_one_group_counts_one_author() -> None:
    assert planned([held_entry(n, "direct_report", "r1") for n in range(3)]) == {}


def test_a_group_that_arrived_today_waits_and_is_not_merged_meanwhile() -> None:
    today = [held_entry(n, "peer", f"p{n}", day=10) for n in range(3)]
    small = [held_entry(7, "direct_report", "r1"), held_entry(8, "stakeholder", "s1")]
    assert planned([*today, *small]) == {}
    assert planned([*today, *small], force=True) == {"peer": {0, 1, 2}}


def test_entries_from_before_rater_groups_count_as_other_stakeholders() -> None:
    old = [held_entry(n, None, f"o{n}") for n in range(3)]
    assert planned(old) == {"stakeholder": {0, 1, 2}}
