"""`close_contract` on SQLite and PostgreSQL: the record, what stops with it, once; the report
still counts a closed contract for the periods it overlaps."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from bot.contracts.closing import close_contract
from bot.report.service import build_report, parse_period
from storage.db import SessionFactory, writing
from storage.models import (
    Amendment,
    AuditEvent,
    Contract,
    ContractStatus,
    Delivery,
    DeliveryStatus,
    FeedbackRequest,
)
from tests.bot.checkins.test_support import add_contract

NOW = datetime(2027, 6, 1, 9, tzinfo=UTC)


async def test_closing_records_why_and_stops_what_is_pending_once(
    sessions: SessionFactory,
) -> None:
    cid = await add_contract(sessions)
    other = await add_contract(sessions, leader="U0PEER001", title="Another")
    async with sessions() as session:
        await writing(session)
        for contract_id, kind, status in (
            (cid, "checkin_reminder", DeliveryStatus.scheduled),
            (cid, "feedback_request", DeliveryStatus.failed),
            (cid, "checkin_prompt", DeliveryStatus.sent),
            (other, "checkin_reminder", DeliveryStatus.scheduled),
        ):
            session.add(
                Delivery(
                    kind=kind,
                    contract_id=contract_id,
                    recipient_id="U0LEAD001",
                    period_key="2027-W22",
                    status=status,
                    due_at=NOW + timedelta(hours=1),
                )
            )
        for contract_id in (cid, other):
            session.add(Amendment(contract_id=contract_id, item_type="indicator", base_version=1))
            session.add(FeedbackRequest(contract_id=contract_id, reviewer_id="U0PEER002"))
        await session.commit()

    for _ in range(2):  # the second close writes nothing
        async with sessions() as session:
            await writing(session)
            contract = await session.get(Contract, cid)
            assert contract is not None
            await close_contract(
                session,
                contract=contract,
                by="U0HRBP001",
                now=NOW,
                reason=" Role ended ",
                superseded_by=None,
            )
            await session.commit()

    async with sessions() as session:
        closed = await session.get(Contract, cid)
        assert closed is not None
        assert (closed.status, closed.closed_by, closed.close_reason, closed.closed_at) == (
            ContractStatus.closed,
            "U0HRBP001",
            "Role ended",
            NOW,
        )
        kept = await session.get(Contract, other)
        assert kept is not None and kept.status == ContractStatus.active
        deliveries = {
            (d.contract_id, d.kind): d.status for d in (await session.exec(select(Delivery))).all()
        }
        assert deliveries == {
            (cid, "checkin_reminder"): DeliveryStatus.cancelled,
            (cid, "feedback_request"): DeliveryStatus.cancelled,
            (cid, "checkin_prompt"): DeliveryStatus.sent,
            (other, "checkin_reminder"): DeliveryStatus.scheduled,
        }
        amendments = {a.contract_id: a for a in (await session.exec(select(Amendment))).all()}
        assert amendments[cid].status == "stale" and "closed" in amendments[cid].decision_reason
        assert amendments[other].status == "pending"
        requests = {r.contract_id: r.status for r in (await session.exec(select(FeedbackRequest)))}
        assert requests == {cid: "expired", other: "open"}
        events = (
            await session.exec(
                select(AuditEvent).where(col(AuditEvent.action) == "contract.closed")
            )
        ).all()
        assert len(events) == 1
        assert events[0].detail["summary"] == "Closed by <@U0HRBP001>: Role ended."
        assert events[0].detail["messages_cancelled"] == 2


async def test_the_report_keeps_a_closed_contract_for_the_periods_it_ran_in(
    sessions: SessionFactory,
) -> None:
    cid = await add_contract(sessions, start=date(2027, 1, 4), end=date(2027, 12, 17))
    async with sessions() as session:
        await writing(session)
        contract = await session.get(Contract, cid)
        assert contract is not None
        await close_contract(session, contract=contract, by=None, now=NOW, reason="")
        await session.commit()
    zone = ZoneInfo("Europe/Berlin")
    async with sessions() as session:
        q1 = await build_report(
            session=session, period=parse_period("2027Q1"), today=date(2027, 6, 2), zone=zone
        )
        later = await build_report(
            session=session, period=parse_period("2027Q3"), today=date(2028, 6, 2), zone=zone
        )
    assert [(r.contract_id, r.status) for r in q1] == [(cid, "Closed")]
    assert later == []  # closed on 1 Jun, before the period it was meant to run into
