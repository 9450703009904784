"""An organisation of a given size, written straight into the tables, and a statement counter.

`seed_organisation` makes N active contracts with W weeks of history each (a check-in, two
measurements and a piece of evidence a week), the way years of use would leave them;
`counting_statements` counts what reaches the database driver (SQLAlchemy's
`before_cursor_execute`), so tests can show a path issues as many statements at 300 contracts
or 156 weeks as at one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import event, insert
from sqlalchemy.engine import Engine

from bot.charts.model import Chart, data_hash
from bot.core.calendar import period_key
from bot.core.clock import ManualClock
from bot.services import Services
from storage.db import SessionFactory, create_engine, session_factory
from storage.models import (
    CheckIn,
    Contract,
    ContractPerson,
    DevelopmentActivity,
    Evidence,
    Expectation,
    Measurement,
    Milestone,
    SuccessIndicator,
)
from storage.queries.charts import keep_chart_file
from tests.harness import make_settings

ZONE = "Europe/Berlin"


@dataclass(frozen=True)
class Organisation:
    """What `seed_organisation` made: contract ids in order, the first led by `leader`."""

    contract_ids: list[int]
    leader: str
    governor: str


async def seed_organisation(
    url: str,
    *,
    now: datetime,
    contracts: int,
    weeks: int,
    leader: str,
    governor: str,
    sponsor_of: Callable[[int], str] | None = None,
    first_id: int = 1,
) -> Organisation:
    """`contracts` active contracts owned by `governor` (and sponsored by `sponsor_of(i)`,
    else by `governor` too), the first led by `leader`, each with `weeks` weeks of history."""
    today = now.date()
    start = today - timedelta(weeks=weeks, days=7)
    ids = list(range(first_id, first_id + contracts))
    rows: dict[Any, list[dict[str, Any]]] = {
        model: []
        for model in (
            Contract,
            ContractPerson,
            Expectation,
            DevelopmentActivity,
            SuccessIndicator,
            Milestone,
            CheckIn,
            Measurement,
            Evidence,
        )
    }
    for i, cid in enumerate(ids):
        rows[Contract].append(
            {
                "id": cid,
                "title": f"Contract {cid:05d}",
                "leader_id": leader if i == 0 else f"UL{cid:07d}",
                "sponsor_id": sponsor_of(i) if sponsor_of else governor,
                "owner_id": governor,
                "status": "active",
                "version": 1,
                "mission": "Grow the team",
                "period_start": start,
                "period_end": today + timedelta(days=180),
                "checkin_weekday": 4,
                "checkin_time": "15:00",
                "checkin_timezone": ZONE,
                "reminder_hours": 24,
                "anonymity_threshold": 3,
                "digest_cadence": "weekly",
                "digest_weekday": 0,
                "digest_time": "09:00",
                "reporting": "",
                "created_at": now - timedelta(weeks=weeks + 1),
                "updated_at": now - timedelta(weeks=weeks + 1),
            }
        )
        rows[ContractPerson].append(
            {"contract_id": cid, "role": "approver", "user_id": governor, "position": 0}
        )
        rows[Expectation].append(
            {"contract_id": cid, "key": "E1", "kind": "impact", "text": "Ship", "position": 0}
        )
        rows[DevelopmentActivity].append(
            {
                "contract_id": cid,
                "key": "D1",
                "title": "Coaching",
                "modality": "coaching",
                "due": today + timedelta(days=90),
                "demonstration": "",
                "status": "in_progress",
                "progress": 20,
                "position": 0,
                "updated_at": now - timedelta(days=3),
            }
        )
        rows[Milestone].append(
            {
                "contract_id": cid,
                "key": "M1",
                "title": "Halfway",
                "due": today + timedelta(days=60),
                "indicator_key": "I1",
                "threshold": 70.0,
                "position": 0,
            }
        )
        for n in (1, 2):
            rows[SuccessIndicator].append(
                {
                    "id": 2 * cid - 2 + n,
                    "contract_id": cid,
                    "key": f"I{n}",
                    "name": f"Indicator {n}",
                    "unit": "points",
                    "baseline": 60,
                    "target": 80,
                    "direction": "increase",
                    "source": "",
                    "cadence": "weekly",
                    "position": n,
                }
            )
        for week in range(weeks, 0, -1):
            at = now - timedelta(weeks=week)
            checkin_id = cid * 1000 + week
            rows[CheckIn].append(
                {
                    "id": checkin_id,
                    "contract_id": cid,
                    "period_key": period_key(at.date()),
                    "status": "answered",
                    "confidence": 4,
                    "wins": "",
                    "reflection": "",
                    "submitted_by": leader if i == 0 else f"UL{cid:07d}",
                    "created_at": at,
                    "updated_at": at,
                }
            )
            for n in (1, 2):
                rows[Measurement].append(
                    {
                        "indicator_id": 2 * cid - 2 + n,
                        "value": 60 + (weeks - week) * 10 / max(weeks, 1),
                        "measured_at": at,
                        "source": "",
                        "recorded_by": leader,
                        "checkin_id": checkin_id,
                        "created_at": at,
                    }
                )
            rows[Evidence].append(
                {
                    "contract_id": cid,
                    "item_type": "indicator",
                    "item_key": "I1",
                    "note": f"Week {week}",
                    "excerpt": "",
                    "source": "command",
                    "added_by": leader,
                    "checkin_id": checkin_id,
                    "created_at": at,
                }
            )
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for model, values in rows.items():
                for chunk in range(0, len(values), 5_000):
                    await connection.execute(insert(model), values[chunk : chunk + 5_000])
    finally:
        await engine.dispose()
    return Organisation(contract_ids=ids, leader=leader, governor=governor)


@dataclass
class Statements:
    """Statements sent to the database while counting, each with what `mark()` said then."""

    seen: list[tuple[str, Any]] = field(default_factory=list)
    mark: Callable[[], Any] = lambda: None

    def __len__(self) -> int:
        return len(self.seen)

    def where(self, test: Callable[[Any], bool]) -> int:
        return sum(1 for _, marked in self.seen if test(marked))


@asynccontextmanager
async def offline_services(url: str, now: datetime) -> AsyncIterator[Services]:
    """The bot's services on the database at `url`, its clock stopped at `now`, no Slack
    (its Web API address answers nothing): what a surface reads and builds, in-process."""
    engine = create_engine(url)
    try:
        yield Services(
            settings=make_settings(api_url="http://127.0.0.1:9/api/", database_url=url),
            sessions=session_factory(engine),
            clock=ManualClock(now),
        )
    finally:
        await engine.dispose()


async def keep_chart_files(sessions: SessionFactory, charts: Iterable[Chart]) -> None:
    """The files of `charts` kept as an upload leaves them (made-up file ids, no Slack)."""
    for n, chart in enumerate(charts):
        await keep_chart_file(
            sessions=sessions,
            contract_id=chart.contract_id,
            subject=chart.subject,
            data_hash=data_hash(chart),
            file_id=f"F0CHART{n:05d}",
        )


@contextmanager
def counting_statements(mark: Callable[[], Any] = lambda: None) -> Iterator[Statements]:
    """Count every statement any engine of this process sends; `mark()` is noted with each
    (e.g. how many `views.open` calls the fake Slack had seen by then)."""
    found = Statements(mark=mark)

    def note(*args: Any) -> None:
        found.seen.append((str(args[2]), found.mark()))

    event.listen(Engine, "before_cursor_execute", note)
    try:
        yield found
    finally:
        event.remove(Engine, "before_cursor_execute", note)


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())
