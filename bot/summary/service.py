"""What a summary reads of its contract (what it shows, not the whole history), and what App
Home reads: a list of every contract its viewer leads or governs, and the charts of a few."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.charts.service import ChartsAt, charts_at
from bot.core.calendar import zone_named
from bot.risks.model import recovery_reaches
from bot.summary.home import charted
from bot.summary.reflection import TREND_WEEKS
from storage.queries.contracts import (
    ContractBundle,
    add_summary_history,
    contracts_for_user,
    load_bundles,
)


@dataclass(frozen=True, slots=True)
class Home:
    """The contracts App Home lists, loaded for a list (`ContractBundle.recent`), and what
    is known of the charts it shows (`charted`): read by `charts_to_show`."""

    bundles: list[ContractBundle]
    charts: list[ChartsAt]


async def load_home(*, session: AsyncSession, viewer: str) -> Home:
    """App Home's contracts, and what is known of the charts of the few it charts
    (`HOME_CHART_CONTRACTS` at most), in a constant number of statements that read no more
    for three years of history than for a week."""
    mine = await contracts_for_user(session=session, user_id=viewer)
    bundles = await load_bundles(session=session, contracts=mine, recent=True)
    shown = charted(viewer=viewer, bundles=bundles)
    at = await charts_at(session=session, contract_ids=[b.contract.id or 0 for b in shown])
    return Home(bundles=bundles, charts=at)


async def load_summary(*, session: AsyncSession, contract_id: int) -> ContractBundle | None:
    """The contract as its summary shows it (`bot.summary.blocks.build_summary`), read in
    the same statements for three years of history as for a week: loaded for a list (each
    indicator's latest values, the periods answered, the evidence counts), with the newest
    evidence, the check-ins of the confidence trend and the latest words, and the first
    value after each missed milestone that reached it (its recovery). Charts are not drawn
    from it (`charts_of` refuses it): they are known by the history's number
    (`bot.charts.service.charts_to_show`), or drawn from the whole bundle."""
    found = await load_bundles(session=session, contracts=[contract_id], recent=True)
    if not found:
        return None
    bundle = found[0]
    zone = zone_named(bundle.contract.checkin_timezone) or ZoneInfo("UTC")
    await add_summary_history(
        session=session,
        bundles=found,
        rated=TREND_WEEKS,
        reaches=recovery_reaches(bundle.milestones, bundle.indicators, zone),
    )
    return bundle
