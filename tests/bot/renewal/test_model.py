"""The renewal's carry-over and the final figures, as pure functions of a loaded contract."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bot.renewal.model import final_figures, renewal_plan, renewal_title
from storage.models import (
    Barrier,
    Contract,
    DevelopmentActivity,
    Expectation,
    Measurement,
    Milestone,
    Resource,
    SuccessIndicator,
)
from storage.queries.contracts import ContractBundle

START, END = date(2027, 1, 4), date(2027, 12, 17)


def bundle() -> ContractBundle:
    contract = Contract(
        id=7,
        title="Head of Platform",
        leader_id="U1",
        sponsor_id="U2",
        period_start=START,
        period_end=END,
    )
    b = ContractBundle(contract=contract)
    b.expectations = [Expectation(contract_id=7, key="E1", kind="impact", text="Own it.")]
    b.activities = [
        DevelopmentActivity(
            contract_id=7,
            key="D1",
            title="Coaching",
            modality="coaching",
            start=date(2027, 2, 1),
            due=date(2027, 6, 30),
            status="done",
        ),
        DevelopmentActivity(
            contract_id=7,
            key="D2",
            title="Mentoring",
            modality="mentorship",
            start=date(2027, 9, 1),
            due=date(2027, 12, 1),
            status="in_progress",
            progress=40,
        ),
    ]
    b.indicators = [
        SuccessIndicator(
            id=1,
            contract_id=7,
            key="I1",
            name="Engagement",
            baseline=62,
            target=75,
            direction="increase",
            cadence="monthly",
        ),
        SuccessIndicator(
            id=2,
            contract_id=7,
            key="I2",
            name="Cycle time",
            unit="days",
            baseline=45,
            target=30,
            direction="decrease",
            cadence="monthly",
        ),
    ]
    b.measurements = {
        1: [
            Measurement(indicator_id=1, value=66, measured_at=datetime(2027, 6, 1, tzinfo=UTC)),
            Measurement(indicator_id=1, value=71, measured_at=datetime(2027, 11, 1, tzinfo=UTC)),
        ]
    }
    b.milestones = [
        Milestone(contract_id=7, key="M1", title="Met", due=date(2027, 4, 1), status="met"),
        Milestone(contract_id=7, key="M2", title="Missed", due=date(2027, 9, 30), status="missed"),
        Milestone(
            contract_id=7, key="M3", title="Coached", due=date(2027, 6, 30), activity_key="D1"
        ),
        Milestone(contract_id=7, key="M4", title="Late", due=date(2027, 12, 10)),
    ]
    b.resources = [Resource(contract_id=7, kind="budget", text="6,000 EUR")]
    b.barriers = [Barrier(contract_id=7, risk="Q3 launch", contingency="Two-week rhythm")]
    return b


def test_the_new_period_has_the_same_length_from_the_day_after_the_end() -> None:
    plan = renewal_plan(bundle())
    assert plan.period_start == date(2027, 12, 18)
    assert plan.period_end - plan.period_start == END - START
    assert plan.period_end == date(2028, 11, 29)


def test_indicators_carry_their_latest_value_as_the_baseline_and_keep_their_target() -> None:
    plan = renewal_plan(bundle())
    carried = {i["key"]: (i["baseline"], i["target"], i["unit"]) for i in plan.indicators}
    assert carried == {"I1": (71, 75, ""), "I2": (45, 30, "days")}  # I2 was never measured


def test_done_activities_and_met_milestones_stay_behind_the_rest_move_by_the_offset() -> None:
    plan = renewal_plan(bundle())
    assert [a["key"] for a in plan.activities] == ["D2"]
    d2 = plan.activities[0]
    assert (d2["start"], d2["due"], d2["status"], d2["progress"]) == (
        date(2028, 8, 14),
        date(2028, 11, 13),
        "in_progress",
        40,
    )
    # M1 was met, M3 depends on the done D1; M2 and M4 move and start over as pending.
    assert [m["key"] for m in plan.milestones] == ["M2", "M4"]
    assert all(plan.period_start <= m["due"] <= plan.period_end for m in plan.milestones)
    assert all("status" not in m for m in plan.milestones)
    assert [e["key"] for e in plan.expectations] == ["E1"]
    assert plan.resources[0]["text"] == "6,000 EUR" and plan.barriers[0]["risk"] == "Q3 launch"


def test_the_renewal_title_is_new_and_fits() -> None:
    start = date(2027, 12, 18)
    assert renewal_title("Head", start) == "Head (renewed 18 Dec 2027)"
    taken = {"Head (renewed 18 Dec 2027)"}
    assert renewal_title("Head", start, taken) == "Head (renewed 18 Dec 2027, 2)"
    assert len(renewal_title("x" * 300, start)) == 200


def test_final_figures_say_baseline_latest_target_and_the_milestones() -> None:
    figures = final_figures(bundle(), date(2027, 12, 18))
    assert figures.indicators[0].text() == (
        "I1 Engagement: baseline 62 → latest 71 vs target 75 · 69% of the way"
    )
    assert "latest no value yet vs target 30 days" in figures.indicators[1].text()
    assert figures.met == ["M1 Met"]
    assert figures.missed == ["M3 Coached", "M2 Missed", "M4 Late"]  # by due date
    assert figures.milestone_line == "1 of 4 milestones met, 3 missed."
