"""Risk rules: resolving one (who may, once), the check-in's "still open?" answers, which
risks escalate, and the values the bot records for `north-star:` indicators.

Resolving. The contract's leader, sponsor and owner, and the risk's owner while they read
the contract, resolve a risk with a note, from the summary or the next check-in. The rule is
checked again when the note is submitted; a risk already resolved stays as it was resolved
first (a double click, a replay, a second person), and the answer says so.

Escalation. An open risk that needs help (the leader asked for the sponsor's help) and is
still unresolved `Contract.escalation_days` after it was raised goes to the contract's
escalation contacts, once per risk and contact (the delivery queue's key names the risk).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.calendar import current_period, period_ends_at
from bot.core.permissions import Refusal, may_read, may_resolve_risk
from bot.people.service import zone_for
from bot.risks.model import (
    COMPUTED_BY,
    COMPUTED_SOURCES,
    NOTE_MAX,
    Resilience,
    Resolved,
    RiskStatus,
    RiskToResolve,
    escalation_due,
    resilience,
)
from bot.services import Services
from storage.db import read_only, writing
from storage.models import Contract, Risk
from storage.queries.contracts import ContractBundle, audit, load_bundle
from storage.queries.risks import (
    computed_indicators,
    find_risk,
    needing_help,
    record_computed,
)


def note_problem(note: str) -> str | None:
    if not note.strip():
        return "Say in a line how it was resolved."
    if len(note) > NOTE_MAX:
        return f"Keep the note to {NOTE_MAX} characters."
    return None


async def _allowed(
    services: Services, session: AsyncSession, risk_id: int, user_id: str
) -> tuple[Risk, ContractBundle, ZoneInfo] | Refusal:
    risk = await find_risk(session=session, risk_id=risk_id)
    bundle = (
        None if risk is None else await load_bundle(session=session, contract_id=risk.contract_id)
    )
    if risk is None or bundle is None or not may_read(bundle, user_id):
        return Refusal("That risk is not one you can see.")
    if not may_resolve_risk(bundle, user_id, risk.owner_id):
        return Refusal(
            "Only the contract's leader, sponsor or owner, or the risk's owner, can resolve it."
        )
    zone = await zone_for(
        session=session, contract=bundle.contract, default=services.settings.default_timezone
    )
    return risk, bundle, zone


async def risk_to_resolve(
    *, services: Services, risk_id: int, user_id: str
) -> RiskToResolve | Refusal:
    """The risk a Resolve button names, if `user_id` may resolve it and it is still open."""
    async with services.sessions() as session:
        await read_only(session)
        found = await _allowed(services, session, risk_id, user_id)
    if isinstance(found, Refusal):
        return found
    risk, bundle, zone = found
    if risk.status == RiskStatus.resolved:
        return Refusal("That risk is already resolved.")
    return RiskToResolve(risk, bundle.contract, zone)


async def resolve(
    *, services: Services, risk_id: int, user_id: str, note: str
) -> Resolved | Refusal:
    """Resolve the risk with `note`, checking the rule again; once (see the module doc)."""
    problem = note_problem(note)
    if problem:
        return Refusal(problem, field="note")
    now = services.clock.now()
    async with services.sessions() as session:
        await writing(session)
        found = await _allowed(services, session, risk_id, user_id)
        if isinstance(found, Refusal):
            return found
        risk, bundle, zone = found
        if risk.status == RiskStatus.resolved:
            return Resolved(risk, bundle.contract, already=True, zone=zone)
        mark_resolved(risk, user_id, note.strip(), now)
        session.add(risk)
        audit(
            session,
            action="risk.resolved",
            contract_id=risk.contract_id,
            actor_id=user_id,
            detail={"risk": risk.id, "note": risk.resolution_note, "from": "summary"},
            at=now,
        )
        await session.commit()
        return Resolved(risk, bundle.contract, already=False, zone=zone)


def mark_resolved(risk: Risk, user_id: str, note: str, now: datetime) -> None:
    risk.status = RiskStatus.resolved
    risk.resolution_note, risk.resolved_by, risk.resolved_at = note, user_id, now


def apply_update(risk: Risk, status: str, note: str, user_id: str, now: datetime) -> bool:
    """A check-in's "still open?" answer for one carried risk; whether it changed it."""
    if risk.status == RiskStatus.resolved or (status == risk.status and not note):
        return False
    if status == RiskStatus.resolved:
        mark_resolved(risk, user_id, note, now)
        return True
    changed = status != risk.status or (bool(note) and note != risk.resolution_note)
    risk.status = status
    if note:
        risk.resolution_note = note  # a mitigation's note: what is being done
    return changed


# --- escalation ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Escalation:
    risk: Risk
    contract: Contract
    recipients: list[str]
    age: int


async def due_escalations(*, services: Services, now: datetime) -> list[Escalation]:
    """Open risks needing help past their contract's escalation days, with whom to tell."""
    found: list[Escalation] = []
    async with services.sessions() as session:
        await read_only(session)
        candidates = await needing_help(session=session, raised_before=now - timedelta(days=1))
        bundles: dict[int, ContractBundle | None] = {}
        for risk, contract in candidates:
            if not escalation_due(risk, now, contract.escalation_days):
                continue
            if contract.id not in bundles:
                bundles[contract.id or 0] = await load_bundle(
                    session=session, contract_id=contract.id or 0
                )
            bundle = bundles[contract.id or 0]
            if bundle is None or not bundle.escalation:
                continue
            age = int((now - risk.created_at).total_seconds() // 86400)
            found.append(Escalation(risk, contract, list(bundle.escalation), age))
    return found


def escalation_period(risk: Risk) -> str:
    """The delivery key's last part: the risk it is about, so each escalates once."""
    return f"risk-{risk.id}"


# --- computed indicators ------------------------------------------------------------------


def figures(bundle: ContractBundle, zone: ZoneInfo, until: datetime | None = None) -> Resilience:
    return resilience(
        bundle.risks,
        bundle.milestones,
        bundle.indicators,
        bundle.measurements,
        zone,
        until=until,
    )


async def record_computed_values(
    *, services: Services, contracts: Sequence[Contract], now: datetime
) -> int:
    """Record this period's value of every `north-star:` indicator of `contracts` that has
    none yet; how many were recorded. Idempotent per indicator and period."""
    recorded = 0
    ids = [c.id or 0 for c in contracts]
    async with services.sessions() as session:
        await read_only(session)
        wanted = await computed_indicators(
            session=session, contract_ids=ids, sources=list(COMPUTED_SOURCES)
        )
    by_contract = {c.id: c for c in contracts}
    for contract_id in sorted({i.contract_id for i in wanted}):
        contract = by_contract[contract_id]
        async with services.sessions() as session:
            await writing(session)
            zone = await zone_for(
                session=session, contract=contract, default=services.settings.default_timezone
            )
            bundle = await load_bundle(session=session, contract_id=contract_id)
            if bundle is None:
                continue
            period = current_period(now, zone)
            measured_at = min(now, period_ends_at(period, zone) - timedelta(microseconds=1))
            shown = figures(bundle, zone, until=now)
            for indicator in bundle.indicators:
                source = indicator.source.strip()
                if source not in COMPUTED_SOURCES:
                    continue
                value = shown.value_of(source)
                if value is None:
                    continue
                recorded += await record_computed(
                    session=session,
                    indicator_id=indicator.id or 0,
                    period=period,
                    value=value,
                    measured_at=measured_at,
                    source=source,
                    recorded_by=COMPUTED_BY,
                )
            await session.commit()
    return recorded
