"""Check-in rules: what a period asks for, whose check-in it is, saving, skip, snooze, history.

What the modal asks for. An indicator is asked for when its cadence falls due
(`bot.core.calendar.indicator_due`): weekly every period; biweekly every second week counted
from the contract's first week; monthly in the first period of a month (its check-in day is
the 1st to the 7th); quarterly in the first period of January, April, July and October. It is
also asked for in any later period of the same cycle while that cycle has no value for it
yet, so a skipped week never loses a monthly value. Activities that are not done and have
started (or have no start date) are shown with their status and progress; milestones due in
the 14 days from the check-in day are listed in the prompt.

Whose period. A check-in period is the ISO week in the leader's time zone (`bot.people`):
the contract's `checkin_timezone`, else the leader's Slack zone, else `DEFAULT_TIMEZONE`.
Its prompt is due at the contract's weekday and time, local wall-clock time.

Late answers. A period can be answered until the end of the Tuesday after its week, on the
leader's wall clock (`bot.core.calendar.answerable_until`, the one rule for it). A prompt
missed while the bot was down (or still unsent when its week ended) is sent once when the
bot is back inside that window, worded for last week; after it, it is not sent, and the
modal refuses the period. A prompt is owed only if it fell due after the contract was
created. A late answer's values are dated within the week they answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import delivery
from bot.checkins.model import (
    ANSWERED,
    CHECKIN_SOURCE,
    HISTORY_PERIODS,
    MILESTONE_DAYS,
    NO_ACTIVE_CONTRACT,
    PROMPT,
    REMINDER,
    SKIP_REASONS,
    SKIPPED,
    Answers,
    DuePrompt,
    EvidenceAnswer,
    IndicatorAsk,
    NotYours,
    Opening,
    PeriodStatus,
    Plan,
    RiskAnswer,
    RiskUpdate,
    Saved,
)
from bot.core.calendar import (
    answerable_until,
    checkin_day,
    current_period,
    first_period,
    in_contract,
    indicator_due,
    late_until,
    local_instant,
    monday,
    monday_of,
    period_ends_at,
    period_label,
    prompt_due_at,
    shift_period,
    zone_named,
)
from bot.core.text import escape, truncate
from bot.delivery import DeliveryKey
from bot.people.service import known_zones, zone_for
from bot.risks.model import CARRIED_MAX, is_computed
from bot.risks.service import apply_update
from bot.services import Services
from storage.db import SessionFactory, read_only, writing
from storage.models import (
    ActivityStatus,
    CheckIn,
    CheckInDraft,
    Contract,
    ContractStatus,
    Delivery,
    DeliveryStatus,
    DevelopmentActivity,
    Evidence,
    Expectation,
    Measurement,
    Milestone,
    MilestoneStatus,
    Risk,
    SuccessIndicator,
)
from storage.queries.checkins import (
    active_contract_of,
    checked_in,
    checkin_evidence,
    checkin_risks,
    checkin_value,
    checkins_of,
    delete_drafts,
    find_checkin,
    find_draft,
    period_rows,
    prompted,
    sent_to_leader,
)
from storage.queries.contracts import active_contract_pages, active_leader_zones, audit
from storage.queries.risks import open_risks


async def load_plan(
    *, session: AsyncSession, contract: Contract, period: str, zone: ZoneInfo
) -> Plan:
    return (await load_plans(session=session, wanted=[(contract, period, zone)]))[0]


async def load_plans(
    *, session: AsyncSession, wanted: Sequence[tuple[Contract, str, ZoneInfo]]
) -> list[Plan]:
    """The plans of many contracts (each for its period), with one query per table."""
    if not wanted:
        return []
    rows = await period_rows(
        session=session,
        contract_ids=[c.id or 0 for c, _, _ in wanted],
        periods={p for _, p, _ in wanted},
    )
    still_open = await open_risks(session=session, contract_ids=[c.id or 0 for c, _, _ in wanted])
    plans = []
    for contract, period, zone in wanted:
        cid = contract.id or 0
        checkin = rows.checkins.get((cid, period))
        plan = _plan(
            contract,
            period,
            zone,
            rows.indicators.get(cid, []),
            rows.series,
            rows.activities.get(cid, []),
            rows.milestones.get(cid, []),
            rows.expectations.get(cid, []),
            checkin,
        )
        if checkin is not None:
            plan.risks = rows.risks.get(checkin.id or 0, [])
            plan.evidence = rows.evidence.get(checkin.id or 0, [])
        plan.carried = [
            r for r in still_open.get(cid, []) if checkin is None or r.checkin_id != checkin.id
        ][:CARRIED_MAX]
        plans.append(plan)
    return plans


def _plan(
    contract: Contract,
    period: str,
    zone: ZoneInfo,
    indicators: list[SuccessIndicator],
    series: dict[int, list[Measurement]],
    activities: list[DevelopmentActivity],
    milestones: list[Milestone],
    expectations: list[Expectation],
    checkin: CheckIn | None,
) -> Plan:
    day = checkin_day(contract, period)
    first_day = checkin_day(contract, first_period(contract))
    asks: list[IndicatorAsk] = []
    for indicator in indicators:
        if is_computed(indicator):
            continue  # the bot records its values: the leader is not asked
        values = series.get(indicator.id or 0, [])
        mine = next((m for m in values if checkin is not None and m.checkin_id == checkin.id), None)
        others = [m for m in values if m is not mine]
        last_date = others[-1].measured_at.astimezone(zone).date() if others else None
        if mine is not None or indicator_due(indicator.cadence, day, first_day, last_date):
            last = values[-1].value if values else None
            asks.append(IndicatorAsk(indicator, last, mine, others[-1] if others else None))
    return Plan(
        contract=contract,
        period=period,
        zone=zone,
        indicators=asks,
        activities=[
            a
            for a in activities
            if a.status != ActivityStatus.done
            and (a.start is None or a.start <= day + timedelta(days=6))
        ],
        milestones=[
            m
            for m in milestones
            if m.status == MilestoneStatus.pending
            and monday_of(period) <= m.due <= day + timedelta(days=MILESTONE_DAYS)
        ],
        expectations=expectations,
        all_indicators=indicators,
        checkin=checkin,
    )


async def plan_for_leader(
    *, services: Services, leader_id: str, period: str | None = None
) -> Plan | NotYours:
    """The leader's current (or named, still open) check-in, or why there is none."""
    found = await opening_for_leader(services=services, leader_id=leader_id, period=period)
    return found if isinstance(found, NotYours) else await plan_of(services=services, opening=found)


async def plan_for_contract(
    *, services: Services, contract_id: int, user_id: str, period: str | None
) -> Plan | NotYours:
    """The check-in a button or modal names, if `user_id` is its leader and it is open."""
    found = await opening_for_contract(
        services=services, contract_id=contract_id, user_id=user_id, period=period
    )
    return found if isinstance(found, NotYours) else await plan_of(services=services, opening=found)


async def opening_for_leader(
    *, services: Services, leader_id: str, period: str | None = None
) -> Opening | NotYours:
    """`plan_for_leader` without the plan: a few small statements, whatever the history."""
    async with services.sessions() as session:
        await read_only(session)
        contract = await active_contract_of(session=session, leader_id=leader_id)
        if contract is None:
            return NotYours(NO_ACTIVE_CONTRACT)
        return await _opening(services, session, contract, period)


async def opening_for_contract(
    *, services: Services, contract_id: int, user_id: str, period: str | None
) -> Opening | NotYours:
    """`plan_for_contract` without the plan: a few small statements, whatever the history."""
    async with services.sessions() as session:
        await read_only(session)
        contract = await session.get(Contract, contract_id)
        if contract is None or contract.leader_id != user_id:
            return NotYours("Only the contract's leader can fill in its check-in.")
        if contract.status != ContractStatus.active:
            if contract.status == ContractStatus.closed:
                return NotYours("This contract is closed, so it takes no more check-ins.")
            return NotYours("This contract is no longer active, so its check-ins are closed.")
        return await _opening(services, session, contract, period)


async def plan_of(*, services: Services, opening: Opening) -> Plan:
    """The plan of a check-in found open."""
    async with services.sessions() as session:
        await read_only(session)
        plan = await load_plan(
            session=session, contract=opening.contract, period=opening.period, zone=opening.zone
        )
    plan.open_until = opening.open_until
    plan.today = services.clock.now().astimezone(opening.zone).date()
    return plan


async def _opening(
    services: Services, session: AsyncSession, contract: Contract, period: str | None
) -> Opening | NotYours:
    zone = await zone_for(
        session=session, contract=contract, default=services.settings.default_timezone
    )
    now = services.clock.now()
    current = current_period(now, zone)
    period = period or current
    late = None if period == current else late_until(period, zone, now)
    if period != current and late is None:
        if monday_of(period) > monday_of(current):
            return NotYours(f"The check-in for {period_label(period)} is not open yet.")
        closed = (answerable_until(period, zone) - timedelta(microseconds=1)).astimezone(zone)
        return NotYours(
            f"The check-in for {period_label(period)} closed at the end of "
            f"{closed:%A %-d %b}; `/checkin` opens this week's."
        )
    if not in_contract(contract, period):
        if late is not None:
            return NotYours(f"Your contract had no check-in in {period_label(period)}.")
        return NotYours(
            f"Your contract's check-ins run from {contract.period_start:%-d %b %Y} "
            f"to {contract.period_end:%-d %b %Y}, so there is none this week."
        )
    return Opening(contract=contract, period=period, zone=zone, open_until=late)


async def keep_page(
    *,
    sessions: SessionFactory,
    plan: Plan,
    user_id: str,
    page: int,
    answers: Answers,
    now: datetime,
) -> None:
    """Keep an earlier page's answers until the last page is submitted."""
    async with sessions() as session:
        await writing(session)
        draft = await find_draft(
            session=session, contract_id=plan.contract_id, period=plan.period, user_id=user_id
        )
        if draft is None:
            draft = CheckInDraft(
                contract_id=plan.contract_id, period_key=plan.period, user_id=user_id
            )
        pages = dict(draft.answers)
        pages[str(page)] = answers.to_json()
        draft.answers = {k: pages[k] for k in sorted(pages, key=int) if int(k) <= page}
        draft.updated_at = now
        session.add(draft)
        await session.commit()


async def kept_pages(
    *, sessions: SessionFactory, plan: Plan, user_id: str, before: int
) -> Answers | None:
    """The answers of pages 1 .. before-1 merged, or None if any of them is missing."""
    if before <= 1:
        return Answers()
    async with sessions() as session:
        draft = await find_draft(
            session=session, contract_id=plan.contract_id, period=plan.period, user_id=user_id
        )
    merged = Answers()
    for page in range(1, before):
        stored = draft.answers.get(str(page)) if draft is not None else None
        if stored is None:
            return None
        merged = merged.merge(Answers.from_json(stored))
    return merged


def _checkin_state(plan: Plan) -> dict[str, Any]:
    c = plan.checkin
    return {
        "status": c.status if c else None,
        "confidence": c.confidence if c else None,
        "wins": c.wins if c else "",
        "reflection": c.reflection if c else "",
        "values": {
            i.indicator.key: i.answered.value for i in plan.indicators if i.answered is not None
        },
        "confirmed": [
            i.indicator.key for i in plan.indicators if i.answered and i.answered.confirmed
        ],
        "risks": [{"text": r.text, "needs_sponsor_help": r.needs_sponsor_help} for r in plan.risks],
        "evidence": [
            {"item": f"{e.item_type}:{e.item_key}", "url": e.url, "note": e.note}
            for e in plan.evidence
        ],
    }


async def save_checkin(
    *, sessions: SessionFactory, plan: Plan, answers: Answers, user_id: str, now: datetime
) -> Saved:
    """Save a check-in with its measurements, activity updates, evidence and risks at once.

    An edit keeps the check-in's row and updates what it recorded in place; its before
    and after go to the audit log.
    """
    for attempt in (1, 2):
        try:
            return await _save(sessions, plan, answers, user_id, now)
        except IntegrityError:
            # Two submissions raced to create the row: the loser saves again as an edit.
            if attempt == 2:
                raise
            async with sessions() as session:
                contract = await session.get(Contract, plan.contract_id)
                assert contract is not None
                plan = await load_plan(
                    session=session, contract=contract, period=plan.period, zone=plan.zone
                )
    raise AssertionError("unreachable")


async def _save(
    sessions: SessionFactory, plan: Plan, answers: Answers, user_id: str, now: datetime
) -> Saved:
    before = _checkin_state(plan)
    edited = plan.answered
    async with sessions() as session:
        await writing(session)
        checkin = await find_checkin(
            session=session, contract_id=plan.contract_id, period=plan.period
        ) or CheckIn(contract_id=plan.contract_id, period_key=plan.period, created_at=now)
        checkin.status, checkin.skip_reason = ANSWERED, None
        checkin.confidence, checkin.wins = answers.confidence, answers.wins
        checkin.reflection, checkin.submitted_by = answers.reflection, user_id
        checkin.updated_at = now
        session.add(checkin)
        await session.flush()
        recorded = Recorded(session, plan, checkin.id or 0, user_id, now)
        await recorded.values(answers.values, confirmed=set(answers.confirmed))
        changed = await recorded.activities(answers.activities)
        await recorded.evidence(answers.evidence)
        help_risks = await recorded.risks(answers.risks)
        updated = await recorded.updates(answers.updates)
        await delete_drafts(session=session, contract_id=plan.contract_id, period=plan.period)
        await delivery.cancel(session=session, key=reminder_key(plan.contract, plan.period))
        detail: dict[str, Any] = {"period": plan.period, "after": _answers_state(answers)}
        if edited:
            detail["before"] = before
        if changed:
            detail["activities"] = changed
        if updated:
            detail["risk_updates"] = updated
        audit(
            session,
            action="checkin.edited" if edited else "checkin.submitted",
            contract_id=plan.contract_id,
            actor_id=user_id,
            detail=detail,
            at=now,
        )
        await session.commit()
        return Saved(checkin=checkin, edited=edited, help_risks=help_risks)


def _answers_state(answers: Answers) -> dict[str, Any]:
    """What the audit log keeps of a submission (the same shape as `_checkin_state`)."""
    return {
        "status": ANSWERED,
        "confidence": answers.confidence,
        "wins": answers.wins,
        "reflection": answers.reflection,
        "values": {k: v for k, v in answers.values.items() if v is not None},
        "confirmed": [k for k in answers.confirmed if answers.values.get(k) is not None],
        "risks": [
            {
                "text": r.text,
                "needs_sponsor_help": r.needs_help,
                "noticed_on": r.noticed_on.isoformat() if r.noticed_on else None,
                "owner": r.owner,
            }
            for r in answers.risks
            if r is not None
        ],
        "evidence": [
            {"item": f"{e.item_type}:{e.item_key}", "url": e.url, "note": e.note}
            for e in answers.evidence
            if e is not None
        ],
    }


@dataclass
class Recorded:
    """Writes one check-in's answers into its unit of work, updating an edit in place."""

    session: AsyncSession
    plan: Plan
    checkin_id: int
    user_id: str
    now: datetime

    @property
    def measured_at(self) -> datetime:
        """When a value answered now counts as measured: now, or for a late answer the
        period's last moment, so it belongs to the week (and month, quarter) it answers."""
        ends = period_ends_at(self.plan.period, self.plan.zone)
        return min(self.now, ends - timedelta(microseconds=1))

    async def values(
        self, values: dict[str, float | None], *, confirmed: set[str] | None = None
    ) -> None:
        """One measurement per indicator and check-in; an emptied value is removed.

        `confirmed`: the keys whose value is the last one, confirmed unchanged (flagged so)."""
        confirmed = confirmed or set()
        by_key = {i.indicator.key: i for i in self.plan.indicators}
        for key, value in values.items():
            ask = by_key.get(key)
            if ask is None:
                continue
            mine = await checkin_value(
                session=self.session, checkin_id=self.checkin_id, indicator_id=ask.indicator.id
            )
            if value is None:
                if mine is not None:
                    await self.session.delete(mine)
            elif mine is None:
                self.session.add(
                    Measurement(
                        indicator_id=ask.indicator.id or 0,
                        value=value,
                        measured_at=self.measured_at,
                        source=CHECKIN_SOURCE,
                        recorded_by=self.user_id,
                        checkin_id=self.checkin_id,
                        created_at=self.now,
                        confirmed=key in confirmed,
                    )
                )
            elif (mine.value, mine.confirmed) != (value, key in confirmed):
                mine.value, mine.confirmed = value, key in confirmed
                self.session.add(mine)

    async def activities(self, answers: dict[str, tuple[str, int]]) -> dict[str, Any]:
        """Each activity's new status and progress; what changed, for the audit log."""
        changed: dict[str, Any] = {}
        for key, (status, progress) in answers.items():
            known = self.plan.activity(key)
            activity = await self.session.get(DevelopmentActivity, known.id) if known else None
            if activity is None or (activity.status, activity.progress) == (status, progress):
                continue
            changed[key] = {"from": [activity.status, activity.progress], "to": [status, progress]}
            activity.status, activity.progress, activity.updated_at = status, progress, self.now
            self.session.add(activity)
        return changed

    async def evidence(self, slots: list[EvidenceAnswer | None]) -> None:
        """Slot i of the modal is the check-in's i-th evidence; an emptied slot removes it."""
        existing = await checkin_evidence(session=self.session, checkin_id=self.checkin_id)
        for slot, given in enumerate(slots):
            row = existing[slot] if slot < len(existing) else None
            if given is None:
                if row is not None:
                    await self.session.delete(row)
                continue
            row = row or Evidence(
                contract_id=self.plan.contract_id,
                item_type=given.item_type,
                item_key=given.item_key,
                source="checkin",
                added_by=self.user_id,
                checkin_id=self.checkin_id,
                created_at=self.now,
            )
            row.item_type, row.item_key = given.item_type, given.item_key
            row.url, row.note = given.url, given.note
            self.session.add(row)

    async def risks(self, slots: list[RiskAnswer | None]) -> list[Risk]:
        """Slot i is the check-in's i-th risk; the risks that newly need the sponsor's help."""
        existing = await checkin_risks(session=self.session, checkin_id=self.checkin_id)
        newly: list[Risk] = []
        for slot, given in enumerate(slots):
            risk = existing[slot] if slot < len(existing) else None
            if given is None:
                if risk is not None:
                    await self.session.delete(risk)
                continue
            asks_now = given.needs_help and (risk is None or not risk.needs_sponsor_help)
            risk = risk or Risk(
                contract_id=self.plan.contract_id,
                checkin_id=self.checkin_id,
                raised_by=self.user_id,
                created_at=self.now,
            )
            risk.text, risk.needs_sponsor_help = given.text, given.needs_help
            risk.noticed_on = given.noticed_on
            risk.owner_id = given.owner or self.plan.contract.leader_id
            self.session.add(risk)
            if asks_now:
                newly.append(risk)
        await self.session.flush()  # the new risks' ids name their sponsor DMs
        return newly

    async def updates(self, answers: dict[int, RiskUpdate]) -> dict[str, Any]:
        """The carried risks' "still open?" answers; what changed, for the audit log."""
        changed: dict[str, Any] = {}
        for risk_id, update in answers.items():
            known = self.plan.carried_risk(risk_id)
            risk = await self.session.get(Risk, known.id) if known else None
            if risk is None or risk.contract_id != self.plan.contract_id:
                continue
            before = risk.status
            if apply_update(risk, update.status, update.note, self.user_id, self.now):
                changed[str(risk_id)] = {"from": before, "to": risk.status, "note": update.note}
                self.session.add(risk)
        return changed


async def skip(
    *, sessions: SessionFactory, plan: Plan, user_id: str, reason: str, now: datetime
) -> NotYours | CheckIn:
    """Mark the period skipped (and cancel its reminder); an answered one stays answered."""
    if reason not in SKIP_REASONS:
        shown = escape(truncate(reason, 40))
        return NotYours(f"“{shown}” is not a reason I know: use leave, sick or other.")
    if plan.answered:
        return NotYours(
            f"You already checked in for {period_label(plan.period)}; "
            "use “Edit check-in” to change it."
        )
    async with sessions() as session:
        await writing(session)
        checkin = await find_checkin(
            session=session, contract_id=plan.contract_id, period=plan.period
        ) or CheckIn(contract_id=plan.contract_id, period_key=plan.period, created_at=now)
        checkin.status, checkin.skip_reason = SKIPPED, reason
        checkin.submitted_by, checkin.updated_at = user_id, now
        session.add(checkin)
        await delivery.cancel(session=session, key=reminder_key(plan.contract, plan.period))
        audit(
            session,
            action="checkin.skipped",
            contract_id=plan.contract_id,
            actor_id=user_id,
            detail={"period": plan.period, "reason": reason},
            at=now,
        )
        await session.commit()
    plan.checkin = checkin
    return checkin


async def snooze(
    *, sessions: SessionFactory, plan: Plan, user_id: str, now: datetime
) -> NotYours | datetime:
    """Move the reminder to this time tomorrow (local wall clock); when it will come."""
    if plan.answered or plan.skipped:
        return NotYours("This week's check-in is already done, so there is nothing to snooze.")
    local = now.astimezone(plan.zone)
    until = local_instant(local.date() + timedelta(days=1), f"{local:%H:%M}", plan.zone)
    if until >= (plan.open_until or period_ends_at(plan.period, plan.zone)):
        which = "Last week's" if plan.open_until else "This week's"
        return NotYours(
            f"{which} check-in closes at midnight, so I can't remind you tomorrow; "
            "answer or skip it today."
        )
    key = reminder_key(plan.contract, plan.period)
    async with sessions() as session:
        await writing(session)
        await delivery.schedule(session=session, key=key, due_at=until)
        row = await delivery.find(session=session, key=key)
        if row is None or row.status != DeliveryStatus.scheduled:
            await session.rollback()
            return NotYours(
                "I've already reminded you once this week, and I remind only once; "
                "the check-in stays open until Sunday night."
            )
        audit(
            session,
            action="checkin.snoozed",
            contract_id=plan.contract_id,
            actor_id=user_id,
            detail={"period": plan.period, "until": until.isoformat()},
            at=now,
        )
        await session.commit()
    return until


async def history(*, services: Services, leader_id: str) -> list[PeriodStatus] | NotYours:
    """The last `HISTORY_PERIODS` periods of the leader's active contract, newest first."""
    async with services.sessions() as session:
        contract = await active_contract_of(session=session, leader_id=leader_id)
        if contract is None:
            return NotYours(NO_ACTIVE_CONTRACT)
        zone = await zone_for(
            session=session, contract=contract, default=services.settings.default_timezone
        )
        checkins = {
            c.period_key: c for c in await checkins_of(session=session, contract_id=contract.id)
        }
    now = services.clock.now()
    current = current_period(now, zone)
    periods: list[PeriodStatus] = []
    period = current
    while len(periods) < HISTORY_PERIODS and monday_of(period) >= monday(contract.period_start):
        if in_contract(contract, period):
            found = checkins.get(period)
            if found is not None:
                periods.append(
                    PeriodStatus(period, found.status, found.confidence, found.skip_reason)
                )
            elif period != current and now >= answerable_until(period, zone):
                periods.append(PeriodStatus(period, "missed"))
            elif period != current:
                periods.append(PeriodStatus(period, "open"))  # late, still answerable
            else:
                due = now >= prompt_due_at(contract, period, zone)
                periods.append(PeriodStatus(period, "open" if due else "upcoming"))
        period = shift_period(period, -1)
    return periods


def prompt_key(contract: Contract, period: str) -> DeliveryKey:
    return DeliveryKey(PROMPT, contract.id or 0, contract.leader_id, period)


def reminder_key(contract: Contract, period: str) -> DeliveryKey:
    return DeliveryKey(REMINDER, contract.id or 0, contract.leader_id, period)


async def period_messages(*, session: AsyncSession, plan: Plan) -> list[Delivery]:
    """The prompt and reminder sent to the leader for this period (to update in place), and
    those being sent."""
    return await sent_to_leader(
        session=session,
        kinds=[PROMPT, REMINDER],
        contract_id=plan.contract_id,
        leader_id=plan.contract.leader_id,
        period=plan.period,
    )


async def due_prompts(
    *, services: Services, client: AsyncWebClient | None, now: datetime, force: bool = False
) -> list[DuePrompt]:
    """Active contracts whose prompt for their current period is due and not yet done, and
    those whose prompt for last week was missed while it can still be answered.

    Zones come from the database only. With a `client`, a leader Slack was never asked
    about is left for `send_prompts` to look up after the known prompts went out; without
    one, the default zone stands in. `force`: due regardless of the time of week (still
    once per period).
    """
    due: list[DuePrompt] = []
    async for contracts in active_contract_pages(sessions=services.sessions):
        due += await _due_among(services, contracts, client=client, now=now, force=force)
    return sorted(due, key=lambda p: (p.due_at, p.contract_id))


async def _due_among(
    services: Services,
    contracts: Sequence[Contract],
    *,
    client: AsyncWebClient | None,
    now: datetime,
    force: bool,
) -> list[DuePrompt]:
    """`due_prompts` of one page of active contracts."""
    zones = await known_zones(services=services, contracts=contracts)
    default = ZoneInfo(services.settings.default_timezone)
    candidates: list[DuePrompt] = []
    for contract in contracts:
        zone = zones[contract.id or 0]
        if zone is None and client is not None:
            continue
        zone = zone or default
        current = current_period(now, zone)
        for period in (shift_period(current, -1), current):
            if not in_contract(contract, period):
                continue
            due_at = prompt_due_at(contract, period, zone)
            if period != current and (
                late_until(period, zone, now) is None or due_at < contract.created_at
            ):
                continue  # closed, or never owed: it fell due before the contract existed
            if force or now >= due_at:
                candidates.append(
                    DuePrompt(contract.id or 0, contract.leader_id, period, zone, due_at)
                )
    if not candidates:
        return []
    periods = sorted({p.period for p in candidates})
    ids = sorted({p.contract_id for p in candidates})
    async with services.sessions() as session:
        await read_only(session)
        delivered = await prompted(session=session, kind=PROMPT, periods=periods, contract_ids=ids)
        settled = await checked_in(session=session, periods=periods, contract_ids=ids)
    return [
        p
        for p in candidates
        if (p.contract_id, p.leader_id, p.period) not in delivered
        and (p.contract_id, p.period) not in settled
    ]


async def leaders_of_implicit_zones(services: Services) -> list[str]:
    """The leaders of active contracts that take their zone from Slack (no valid zone of
    their own)."""
    async with services.sessions() as session:
        await read_only(session)
        found = await active_leader_zones(session=session)
    return list(dict.fromkeys(leader for leader, zone in found if zone_named(zone) is None))


async def reload_plan(*, services: Services, plan: Plan) -> Plan:
    async with services.sessions() as session:
        contract = await session.get(Contract, plan.contract_id)
        assert contract is not None
        fresh = await load_plan(
            session=session, contract=contract, period=plan.period, zone=plan.zone
        )
    fresh.open_until = late_until(plan.period, plan.zone, services.clock.now())
    return fresh
