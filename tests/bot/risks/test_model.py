"""The resilience figures as pure functions: surfacing, resolution, recovery, escalation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.risks.model import (
    RECOVERY,
    RESOLUTION,
    SURFACING,
    age_days,
    escalation_due,
    recoveries,
    resilience,
    resolution_days,
    source_problem,
    surfacing_days,
)
from storage.models import Measurement, Milestone, Risk, SuccessIndicator

BERLIN = ZoneInfo("Europe/Berlin")
RAISED = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)


def risk(**values: Any) -> Risk:
    defaults: dict[str, Any] = {"contract_id": 1, "text": "r", "created_at": RAISED}
    return Risk(**{**defaults, **values})


def indicator(direction: str = "increase") -> SuccessIndicator:
    baseline, target = (60, 75) if direction == "increase" else (45, 30)
    return SuccessIndicator(
        id=1,
        contract_id=1,
        key="I1",
        name="x",
        baseline=baseline,
        target=target,
        direction=direction,
        cadence="weekly",
    )


def value(day: date, amount: float) -> Measurement:
    return Measurement(
        indicator_id=1, value=amount, measured_at=datetime.combine(day, datetime.min.time(), UTC)
    )


def missed(threshold: float | None = 68, due: date = date(2027, 4, 1)) -> Milestone:
    return Milestone(
        contract_id=1,
        key="M1",
        title="t",
        due=due,
        indicator_key="I1",
        threshold=threshold,
        status="missed",
    )


def test_surfacing_counts_days_from_noticed_to_raised_in_the_leaders_zone() -> None:
    assert surfacing_days(risk(noticed_on=date(2027, 3, 6)), BERLIN) == 4
    assert surfacing_days(risk(noticed_on=date(2027, 3, 10)), BERLIN) == 0
    assert surfacing_days(risk(), BERLIN) is None
    # Raised at 23:30 UTC is already the next day in Berlin.
    late = risk(noticed_on=date(2027, 3, 10), created_at=datetime(2027, 3, 10, 23, 30, tzinfo=UTC))
    assert surfacing_days(late, BERLIN) == 1


def test_resolution_counts_only_resolved_risks() -> None:
    done = risk(status="resolved", resolved_at=RAISED + timedelta(days=5, hours=2))
    assert resolution_days(done, BERLIN) == 5
    assert resolution_days(risk(status="mitigating"), BERLIN) is None
    assert resolution_days(risk(resolved_at=RAISED), BERLIN) is None  # not resolved now


@pytest.mark.parametrize(
    ("age", "help_needed", "status", "due"),
    [
        (timedelta(days=13, hours=23), True, "open", False),
        (timedelta(days=14), True, "open", True),
        (timedelta(days=14), True, "mitigating", True),
        (timedelta(days=30), False, "open", False),
        (timedelta(days=30), True, "resolved", False),
    ],
)
def test_escalation_is_due_for_an_open_risk_needing_help_past_its_days(
    age: timedelta, help_needed: bool, status: str, due: bool
) -> None:
    r = risk(needs_sponsor_help=help_needed, status=status)
    assert escalation_due(r, RAISED + age, 14) is due
    assert age_days(r, RAISED + age) == age.days


def test_recovery_is_the_days_until_a_later_value_reached_the_threshold() -> None:
    series = {
        1: [
            value(date(2027, 3, 25), 66),
            value(date(2027, 4, 8), 67),
            value(date(2027, 4, 15), 69),
            value(date(2027, 4, 22), 70),
        ]
    }
    (found,) = recoveries([missed()], [indicator()], series, BERLIN)
    assert found.days == 14 and found.text == "M1: recovered in 14 days"
    (pending,) = recoveries([missed(threshold=80)], [indicator()], series, BERLIN)
    assert pending.days is None and pending.text == "M1: not recovered yet"


def test_recovery_follows_the_indicators_direction_and_target() -> None:
    series = {1: [value(date(2027, 4, 2), 31), value(date(2027, 4, 3), 30)]}
    (found,) = recoveries([missed(threshold=None)], [indicator("decrease")], series, BERLIN)
    assert found.days == 2  # the target, 30, reached on 3 Apr
    met = Milestone(contract_id=1, key="M2", title="t", due=date(2027, 4, 1), status="met")
    assert recoveries([met], [indicator()], series, BERLIN) == []


def test_the_figures_are_means_and_count_what_is_open() -> None:
    risks = [
        risk(noticed_on=date(2027, 3, 6)),
        risk(
            noticed_on=date(2027, 3, 9),
            status="resolved",
            resolved_at=RAISED + timedelta(days=3),
        ),
        risk(status="mitigating"),
    ]
    figures = resilience(risks, [], [indicator()], {}, BERLIN)
    assert (figures.surfacing, figures.resolution, figures.recovery) == (2.5, 3.0, None)
    assert (figures.open_count, figures.resolved_count) == (2, 1)
    assert figures.value_of(SURFACING) == 2.5 and figures.value_of(RESOLUTION) == 3.0
    assert figures.value_of(RECOVERY) is None
    assert figures.lines()[0] == "Surfacing: 2.5 days from noticed to raised (mean)"
    # Until a moment before the resolution, it was open.
    earlier = resilience(risks, [], [], {}, BERLIN, until=RAISED + timedelta(days=1))
    assert earlier.resolution is None and earlier.resolved_count == 0


def test_only_known_north_star_sources_are_accepted() -> None:
    assert source_problem("Pulse survey") is None
    assert source_problem(SURFACING) is None
    problem = source_problem("north-star:risk-happiness")
    assert problem is not None and "not a figure North Star computes" in problem


def test_a_risk_resolved_after_until_was_open_then() -> None:
    later = risk(status="resolved", resolved_at=RAISED + timedelta(days=9))
    figures = resilience([later], [], [], {}, BERLIN, until=RAISED + timedelta(days=1))
    assert (figures.open_count, figures.resolved_count, figures.resolution) == (1, 0, None)
