"""What App Home reads: a list of every contract its viewer leads or governs, and the charts
of a few of them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.charts.model import Chart
from bot.summary.home import charted, home_charts
from storage.queries.contracts import ContractBundle, contracts_for_user, load_bundles


@dataclass(frozen=True, slots=True)
class Home:
    """The contracts App Home lists, loaded for a list (`ContractBundle.recent`), and the
    charts it shows, drawn from the whole history of the few contracts charted."""

    bundles: list[ContractBundle]
    charts: list[Chart]


async def load_home(*, session: AsyncSession, viewer: str) -> Home:
    """App Home's contracts and charts, in a constant number of statements that read no
    more for three years of history than for a week, but for the charted contracts
    (`HOME_CHART_CONTRACTS` at most)."""
    mine = await contracts_for_user(session=session, user_id=viewer)
    bundles = await load_bundles(session=session, contracts=mine, recent=True)
    shown = charted(viewer=viewer, bundles=bundles)
    whole = await load_bundles(session=session, contracts=[b.contract for b in shown])
    return Home(bundles=bundles, charts=home_charts(whole))
