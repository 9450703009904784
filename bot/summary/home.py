"""The App Home tab, by role: my contract, the contracts I sponsor or govern."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, DividerBlock
from slack_sdk.models.views import View

from bot.charts.blocks import chart_blocks
from bot.charts.model import ShownChart
from bot.core.permissions import may_read
from bot.core.text import escape, truncate
from bot.evidence.blocks import evidence_headline
from bot.summary.blocks import STATUS_LABEL, headline, indicator_line
from bot.ui.blocks import LIST_CAP, context, day, fit_view, header, section
from bot.ui.metadata import ContractRef
from storage.models import ContractStatus, Role
from storage.queries.contracts import ContractBundle

OPEN_SUMMARY = "home_open_summary"
EDIT_DRAFT = "home_edit_draft"
NEW_CONTRACT_BUTTON = "home_new_contract"
ROLE_LABEL = {
    Role.sponsor: "sponsor",
    Role.owner: "owner",
    Role.approver: "approver",
    Role.escalation: "escalation",
}


def _buttons(bundle: ContractBundle, block_id: str) -> ActionsBlock:
    value = ContractRef.write(contract_id=bundle.contract.id)
    elements = [ButtonElement(text="Open summary", action_id=OPEN_SUMMARY, value=value)]
    if bundle.contract.status == ContractStatus.draft:
        elements.append(ButtonElement(text="Continue editing", action_id=EDIT_DRAFT, value=value))
    return ActionsBlock(block_id=block_id, elements=elements)


def _status(bundle: ContractBundle) -> str:
    return STATUS_LABEL.get(ContractStatus(bundle.contract.status), bundle.contract.status)


def _closed_entry(bundle: ContractBundle, viewer: str, index: int) -> list[Block]:
    c = bundle.contract
    whose = "" if c.leader_id == viewer else f"<@{c.leader_id}> · "
    when = f"closed {day(c.closed_at.date())}" if c.closed_at else "closed"
    return [
        section(f"*{escape(truncate(c.title, 200))}*\n{whose}{when} · version {c.version}"),
        context(headline(bundle, today=c.period_end)),
        _buttons(bundle, f"closed_{index}"),
    ]


# Indicator charts per open contract in App Home (its confidence sparkline comes after them),
# for the viewer's own contracts first, then those they govern, up to HOME_CHART_CONTRACTS.
HOME_CHARTS = 3
HOME_CHART_CONTRACTS = 5


def charted(*, viewer: str, bundles: Sequence[ContractBundle]) -> list[ContractBundle]:
    """The contracts whose charts App Home shows: the active ones the viewer may read, those
    they lead first, up to `HOME_CHART_CONTRACTS`."""
    open_ = [
        b
        for b in bundles
        if (b.contract.leader_id == viewer or may_read(b, viewer))
        and b.contract.status == ContractStatus.active
    ]
    open_.sort(key=lambda b: b.contract.leader_id != viewer)  # stable: led ones first
    return open_[:HOME_CHART_CONTRACTS]


def _charts(bundle: ContractBundle, charts: Mapping[int, Sequence[ShownChart]]) -> list[Block]:
    return chart_blocks(charts.get(bundle.contract.id or 0, ()))


def build_home(
    *,
    viewer: str,
    bundles: list[ContractBundle],
    today: date,
    notes: Mapping[int, str] | None = None,
    charts: Mapping[int, Sequence[ShownChart]] | None = None,
) -> View:
    """Open contracts first (led, then governed), the closed ones last under their heading.

    `notes`: a line by contract id, where its agreement stands (a draft's, or the renewal an
    active contract waits for), shown under it; `charts`: the uploaded charts of each
    contract, by contract id."""
    notes = notes or {}
    charts = charts or {}
    readable = [b for b in bundles if b.contract.leader_id == viewer or may_read(b, viewer)]
    closed = [b for b in readable if b.contract.status == ContractStatus.closed]
    led = [
        b
        for b in readable
        if b.contract.leader_id == viewer and b.contract.status != ContractStatus.closed
    ]
    governed = [
        b
        for b in readable
        if b.contract.leader_id != viewer and b.contract.status != ContractStatus.closed
    ]
    blocks: list[Block] = [header("North Star")]
    if not led and not governed and not closed:
        blocks += [
            section(
                "North Star keeps a leader's performance contract in Slack: expectations, "
                "development activities, success indicators with baselines and targets, "
                "milestones and governance, with weekly check-ins and peer feedback."
            ),
            section(
                "*Get started*\n"
                "• Leading? Create your contract with `/contract new` (or the button below), "
                "or ask your HR partner to import it.\n"
                "• Giving feedback to a leader? Use `/feedback @leader`.\n"
                "• Type `/contract help` for everything else."
            ),
            ActionsBlock(
                block_id="get_started",
                elements=[
                    ButtonElement(
                        text="Create a contract", action_id=NEW_CONTRACT_BUTTON, style="primary"
                    )
                ],
            ),
        ]
        return View(type="home", blocks=blocks)

    for index, bundle in enumerate(led):
        c = bundle.contract
        blocks += [
            section(f"*Your contract: {escape(truncate(c.title, 200))}*"),
            context(
                f"{_status(bundle)} · version {c.version}",
                headline(bundle, today=today),
                evidence_headline(bundle, today),
            ),
        ]
        if c.id in notes:
            blocks.append(context(notes[c.id or 0]))
        blocks += [section(indicator_line(bundle, i, today)) for i in bundle.indicators[:LIST_CAP]]
        if len(bundle.indicators) > LIST_CAP:
            blocks.append(context(f"_…and {len(bundle.indicators) - LIST_CAP} more indicators_"))
        blocks += _charts(bundle, charts)
        blocks.append(_buttons(bundle, f"led_{index}"))
        blocks.append(DividerBlock())

    if governed:
        blocks.append(section("*Contracts you sponsor or govern*"))
        for index, bundle in enumerate(governed):
            c = bundle.contract
            roles = sorted(ROLE_LABEL[r] for r in bundle.roles_of(viewer) if r in ROLE_LABEL)
            blocks += [
                section(
                    f"*{escape(truncate(c.title, 200))}*\n<@{c.leader_id}> · {_status(bundle)}"
                    f" · you are {', '.join(roles)}"
                ),
                context(headline(bundle, today=today), evidence_headline(bundle, today)),
                *_charts(bundle, charts),
            ]
            if c.id in notes:
                blocks.append(context(notes[c.id or 0]))
            blocks.append(_buttons(bundle, f"governed_{index}"))
    if closed:
        blocks += [DividerBlock(), section("*Closed*")]
        ordered = sorted(closed, key=lambda b: b.contract.closed_at or b.contract.updated_at)
        for index, bundle in enumerate(reversed(ordered)):
            blocks += _closed_entry(bundle, viewer, index)
    return View(type="home", blocks=fit_view(blocks))


def build_summary_modal(blocks: list[Block], *, title: str) -> View:
    return View(
        type="modal",
        title=truncate(title, 24),
        close="Close",
        blocks=fit_view(blocks),
    )
