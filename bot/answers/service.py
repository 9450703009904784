"""Answers to check-ins, the rules: who reads a whole check-in, who replies and nudges, and
what each writes (once, whatever the clicks). No Slack here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from bot import delivery
from bot.answers.model import Nudged, RiskShown, Shown
from bot.checkins.model import PROMPT
from bot.core.calendar import answerable_until, in_contract, prompt_due_at
from bot.core.permissions import Refusal, may_answer_checkin, may_nudge, may_read
from bot.delivery import DeliveryKey
from bot.people.service import zone_for
from bot.services import Services
from storage.db import read_only, writing
from storage.models import CheckIn, CheckInReply, Contract, ContractStatus, Delivery
from storage.queries.answers import add_nudge, add_reply, answered_risks, checkin_by_id, replies_of
from storage.queries.checkins import checkins_of
from storage.queries.contracts import ContractBundle, load_bundle, load_governance
from storage.queries.risks import find_risk

GONE = "That check-in is no longer there."
NOT_YOURS = "You can't read that check-in: it belongs to a contract you don't read."
NOT_REPLIER = "Only the contract's sponsor, owner or approvers can reply to its check-ins here."
OWN = "That's your own check-in: add to it with *Edit check-in* instead."


async def checkin_to_show(*, services: Services, checkin_id: int, user: str) -> Shown | Refusal:
    """The answered check-in `checkin_id` if `user` reads its contract, with its replies."""
    async with services.sessions() as session:
        await read_only(session)
        found = await _readable(session, checkin_id, user, load_bundle)
        if isinstance(found, Refusal):
            return found
        checkin, bundle = found
        replies = (await replies_of(session=session, checkin_ids=[checkin_id])).get(checkin_id, [])
        texts = await answered_risks(session=session, reply_ids=[r.id or 0 for r in replies])
    answerer = may_answer_checkin(bundle, user) and user != bundle.contract.leader_id
    return Shown(
        checkin=checkin, bundle=bundle, replies=replies, may_reply=answerer, risk_texts=texts
    )


async def may_open_checkin(
    *, services: Services, checkin_id: int, user: str, replying: bool = False
) -> Refusal | None:
    """`checkin_to_show`'s checks (`replying`: and `refusal_to_reply`'s) on the check-in's row
    and the contract's people alone, whatever its history: its modal opens after these, and
    loads the rest into it."""
    async with services.sessions() as session:
        await read_only(session)
        found = await _readable(session, checkin_id, user, load_governance)
    if isinstance(found, Refusal):
        return found
    return _reply_refusal(found[1], user) if replying else None


async def _readable(
    session: AsyncSession,
    checkin_id: int,
    user: str,
    load: Callable[..., Awaitable[ContractBundle | None]],
) -> tuple[CheckIn, ContractBundle] | Refusal:
    """The answered check-in and its contract as `load` reads it, if `user` reads it."""
    checkin = await checkin_by_id(session=session, checkin_id=checkin_id)
    if checkin is None or checkin.status != "answered":
        return Refusal(GONE)
    bundle = await load(session=session, contract_id=checkin.contract_id)
    if bundle is None:
        return Refusal(GONE)
    if not may_read(bundle, user):
        return Refusal(NOT_YOURS)
    return checkin, bundle


RISK_GONE = "That risk is no longer there, or was not raised in a check-in."
RISK_NOT_REPLIER = "Only the contract's sponsor, owner or approvers can reply to its risks here."
RISK_OWN = "That's your own risk: update it in your next check-in instead."


async def risk_to_answer(*, services: Services, risk_id: int, user: str) -> RiskShown | Refusal:
    """The risk `risk_id` with the check-in it was raised in, if `user` may reply to it: the
    contract's sponsor, owner or approvers, not its leader (checked on every click)."""
    async with services.sessions() as session:
        await read_only(session)
        risk = await find_risk(session=session, risk_id=risk_id)
    if risk is None or risk.checkin_id is None:
        return Refusal(RISK_GONE)
    shown = await checkin_to_show(services=services, checkin_id=risk.checkin_id, user=user)
    if isinstance(shown, Refusal):
        return Refusal(RISK_GONE) if shown.text == GONE else shown
    if shown.checkin.contract_id != risk.contract_id:
        return Refusal(RISK_GONE)
    if user == shown.bundle.contract.leader_id:
        return Refusal(RISK_OWN)
    if not shown.may_reply:
        return Refusal(RISK_NOT_REPLIER)
    return RiskShown(risk=risk, shown=shown)


def refusal_to_reply(shown: Shown, user: str) -> Refusal | None:
    return _reply_refusal(shown.bundle, user)


def _reply_refusal(bundle: ContractBundle, user: str) -> Refusal | None:
    if user == bundle.contract.leader_id:
        return Refusal(OWN)
    if not may_answer_checkin(bundle, user):
        return Refusal(NOT_REPLIER)
    return None


async def save_risk_reply(
    *, services: Services, risk_id: int, user: str, text: str, request_key: str
) -> tuple[RiskShown, CheckInReply, bool] | Refusal:
    """Keep `user`'s reply to a risk with the check-in it was raised in (permission checked
    again); the reply, and whether this request wrote it."""
    found = await risk_to_answer(services=services, risk_id=risk_id, user=user)
    if isinstance(found, Refusal):
        return found
    reply, new = await _keep(
        services=services,
        shown=found.shown,
        user=user,
        text=text,
        request_key=request_key,
        risk_id=risk_id,
    )
    return found, reply, new


async def save_reply(
    *, services: Services, checkin_id: int, user: str, text: str, request_key: str
) -> tuple[Shown, CheckInReply, bool] | Refusal:
    """Keep `user`'s reply to the check-in (permission checked again); the reply, and
    whether this request wrote it (False: a repeat of the one that did)."""
    shown = await checkin_to_show(services=services, checkin_id=checkin_id, user=user)
    if isinstance(shown, Refusal):
        return shown
    refused = refusal_to_reply(shown, user)
    if refused is not None:
        return refused
    reply, new = await _keep(
        services=services, shown=shown, user=user, text=text, request_key=request_key
    )
    return shown, reply, new


async def _keep(
    *,
    services: Services,
    shown: Shown,
    user: str,
    text: str,
    request_key: str,
    risk_id: int | None = None,
) -> tuple[CheckInReply, bool]:
    row = CheckInReply(
        checkin_id=shown.checkin.id or 0,
        contract_id=shown.checkin.contract_id,
        author_id=user,
        text=text,
        request_key=request_key,
        created_at=services.clock.now(),
    )
    async with services.sessions() as session:
        await writing(session)
        return await add_reply(session=session, reply=row, risk_id=risk_id)


async def prompt_of(*, services: Services, checkin: CheckIn, leader: str) -> Delivery | None:
    """The leader's prompt message for the check-in's week, if it was sent."""
    async with services.sessions() as session:
        await read_only(session)
        row = await delivery.find(
            session=session,
            key=DeliveryKey(PROMPT, checkin.contract_id, leader, checkin.period_key),
        )
    if row is None or not row.slack_channel or not row.slack_ts:
        return None
    return row


async def nudge(
    *, services: Services, contract_id: int, period: str, user: str
) -> tuple[Nudged, Contract, bool] | Refusal:
    """Record the week's one nudge (or find the earlier one); and whether the week can
    still be answered. Refused unless `user` is the sponsor or owner and the week was due,
    in the contract, and neither answered nor skipped."""
    now = services.clock.now()
    async with services.sessions() as session:
        await read_only(session)
        bundle = await load_bundle(session=session, contract_id=contract_id)
        if bundle is None or not may_read(bundle, user):
            return Refusal("You can't nudge about that contract.")
        contract = bundle.contract
        if not may_nudge(bundle, user):
            return Refusal("Only the contract's sponsor or owner can nudge its leader.")
        if contract.status != ContractStatus.active:
            return Refusal("That contract is no longer active, so there is nothing to nudge.")
        if not in_contract(contract, period):
            return Refusal("That week is outside the contract's dates.")
        if any(c.period_key == period for c in bundle.checkins):
            return Refusal("That week's check-in was answered or skipped since: no nudge needed.")
        zone = await zone_for(
            session=session, contract=contract, default=services.settings.default_timezone
        )
    if now < prompt_due_at(contract, period, zone):
        return Refusal("That week's check-in is not due yet.")
    async with services.sessions() as session:
        await writing(session)
        row, new = await add_nudge(
            session=session, contract_id=contract_id, period_key=period, user_id=user, at=now
        )
    nudged = Nudged(
        new=new, by=row.nudged_by, at=row.created_at, leader=contract.leader_id, period=period
    )
    return nudged, contract, now < answerable_until(period, zone)


async def history_replies(
    *, services: Services, contract_id: int, periods: Sequence[str]
) -> list[tuple[str, CheckInReply, str | None]]:
    """The replies to the contract's check-ins of `periods`, newest week first, each week's
    oldest reply first: for `/checkin history`, whose reader is the contract's leader."""
    async with services.sessions() as session:
        await read_only(session)
        wanted = set(periods)
        checkins = [
            c
            for c in await checkins_of(session=session, contract_id=contract_id)
            if c.period_key in wanted and c.id is not None
        ]
        found = await replies_of(session=session, checkin_ids=[c.id or 0 for c in checkins])
        texts = await answered_risks(
            session=session, reply_ids=[r.id or 0 for rs in found.values() for r in rs]
        )
    return [
        (c.period_key, r, texts.get(r.id or 0))
        for c in sorted(checkins, key=lambda c: c.period_key, reverse=True)
        for r in found.get(c.id or 0, [])
    ]
