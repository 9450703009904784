"""Check-in Block Kit builders and the modal's parsing, as pure functions, within Slack's limits."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.checkins.blocks import (
    ACTIONS_BLOCK,
    MAX_PAGES,
    build_checkin_modal,
    build_history,
    build_prompt,
    build_reminder_message,
    build_skipped,
    build_sponsor_help,
    build_submitted,
    build_undeliverable_notice,
    paginate,
)
from bot.checkins.forms import parse_page, target_of, url_problem
from bot.checkins.model import IndicatorAsk, PeriodStatus, Plan
from bot.core.rules import value_range
from storage.models import (
    CheckIn,
    Contract,
    DevelopmentActivity,
    Expectation,
    Measurement,
    SuccessIndicator,
)
from tests.fakes.slack_api import validate_message_blocks, validate_view

FEB_3 = datetime(2027, 2, 3, 14, 0, tzinfo=UTC)


def indicator(key: str, **overrides: Any) -> SuccessIndicator:
    values: dict[str, Any] = {
        "id": int(key[1:]),
        "contract_id": 1,
        "key": key,
        "name": f"Indicator {key} " + "x" * 150,
        "unit": "days",
        "baseline": 45,
        "target": 30,
        "direction": "decrease",
        "cadence": "weekly",
    }
    values.update(overrides)
    return SuccessIndicator(**values)


def plan(indicators: int = 2, activities: int = 1, **overrides: Any) -> Plan:
    contract = Contract(
        id=1,
        title="Head of Platform: FY2027 " + "y" * 250,
        leader_id="U0LEAD001",
        sponsor_id="U0SPON001",
        period_start=date(2027, 1, 4),
        period_end=date(2027, 12, 17),
    )
    items = [indicator(f"I{n}") for n in range(1, indicators + 1)]
    values: dict[str, Any] = {
        "contract": contract,
        "period": "2027-W10",
        "zone": ZoneInfo("Europe/Berlin"),
        "indicators": [IndicatorAsk(i, 40.0) for i in items],
        "activities": [
            DevelopmentActivity(
                id=n,
                contract_id=1,
                key=f"D{n}",
                title=f"Activity {n}",
                modality="coaching",
                due=date(2027, 6, 30),
                status="in_progress",
                progress=20,
            )
            for n in range(1, activities + 1)
        ],
        "milestones": [],
        "expectations": [Expectation(id=1, contract_id=1, key="E1", kind="impact", text="Own it.")],
        "all_indicators": items,
    }
    values.update(overrides)
    return Plan(**values)


def state(view: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A view_submission's view with `values` (block id -> raw value) filled in."""
    filled: dict[str, Any] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        bid, element = block["block_id"], block["element"]
        kind, given = element["type"], values.get(bid)
        entry: dict[str, Any]
        if kind in ("static_select", "radio_buttons"):
            picked = {"value": given} if given else element.get("initial_option")
            entry = {"selected_option": picked}
        elif kind == "checkboxes":
            chosen = [{"value": v} for v in given] if given else element.get("initial_options")
            entry = {"selected_options": chosen or []}
        else:
            entry = {"value": given if given is not None else element.get("initial_value")}
        filled[bid] = {bid: {"type": kind, **entry}}
    return {**view, "state": {"values": filled}}


def test_every_message_builder_makes_valid_blocks() -> None:
    p = plan(indicators=300, activities=40)
    p.checkin = CheckIn(id=1, contract_id=1, period_key="2027-W10", confidence=4)
    messages: list[Any] = [
        build_prompt(p, notice="⏰ Snoozed"),
        build_reminder_message(p),
        build_submitted(p),
        build_sponsor_help(p, "Budget frozen " * 400),
        build_undeliverable_notice(p.contract, "U0LEAD001", "the prompt", "account_inactive"),
        build_history([PeriodStatus("2027-W10", "answered", 4)], p.contract.title),
    ]
    skipped = plan()
    skipped.checkin = CheckIn(contract_id=1, period_key="2027-W10", status="skipped")
    messages.append(build_skipped(skipped))
    for message in messages:
        blocks = [b.to_dict() for b in (message if isinstance(message, list) else message.blocks)]
        assert validate_message_blocks(blocks) == [], blocks
        assert len(blocks) <= 50


@pytest.mark.parametrize(
    ("indicators", "activities"), [(0, 0), (3, 2), (80, 10), (150, 60), (200, 60)]
)
def test_every_page_of_the_modal_fits_slack(indicators: int, activities: int) -> None:
    p = plan(indicators, activities)
    pages = paginate(p)
    assert 1 <= len(pages) <= MAX_PAGES
    for page in range(1, len(pages) + 1):
        view = build_checkin_modal(p, page=page).to_dict()
        assert validate_view(view, kind="modal") == [], view["title"]
        assert len(view["blocks"]) <= 100
        meta = json.loads(view["private_metadata"])
        assert set(meta) == {"contract_id", "period", "page", "pages"}
        assert ("confidence" in json.dumps(view["blocks"])) is (page == len(pages))


def test_what_does_not_fit_three_pages_is_said() -> None:
    view = build_checkin_modal(plan(200, 60), page=3).to_dict()
    assert "more items don't fit" in json.dumps(view["blocks"])


def test_pages_are_cut_by_block_count() -> None:
    pages = paginate(plan(10, 5), page_blocks=12)
    assert [len(page) for page in pages] == [10, 5, 0]  # 10 + 2x5 blocks, then the closing page
    crowded = paginate(plan(150, 60), page_blocks=30)
    assert len(crowded) == MAX_PAGES and len(crowded[-1]) == 13  # room left for the closing


def test_the_numbers_a_value_may_take() -> None:
    assert value_range(indicator("I1", unit="%", baseline=40, target=90)) == (0, 100)
    assert value_range(indicator("I1", unit="%", baseline=90, target=140)) == (0, None)
    assert value_range(indicator("I1", unit="days")) == (0, None)
    assert value_range(indicator("I1", unit="NPS", baseline=-20, target=30)) == (None, None)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://dash.example.com/x?y=1", True),
        ("http://wiki/page", True),
        ("example.com", False),
        ("javascript:alert(1)", False),
        ("https://", False),
        ("https://exa mple.com", False),
        ("https://example.com/" + "a" * 2000, False),
    ],
)
def test_links(url: str, ok: bool) -> None:
    assert (url_problem(url) is None) is ok


def test_the_closing_questions_need_a_confidence_from_1_to_5() -> None:
    view = build_checkin_modal(plan()).to_dict()
    _, errors = parse_page(plan(), state(view, {}))
    assert errors == {"confidence": "Choose how confident you are, from 1 to 5."}
    _, errors = parse_page(plan(), state(view, {"confidence": "9"}))
    assert set(errors) == {"confidence"}
    answers, errors = parse_page(
        plan(), state(view, {"confidence": "5", "ind:I1": "7,5", "act:D1:status": "done"})
    )
    assert errors == {}
    assert answers.values == {"I1": 7.5, "I2": None}  # untouched: no value, nothing recorded
    assert answers.activities == {"D1": ("done", 100)}  # done means 100%
    assert answers.confidence == 5 and answers.closing


def test_items_that_left_the_contract_are_errors_not_silently_dropped() -> None:
    view = build_checkin_modal(plan(indicators=3)).to_dict()
    _, errors = parse_page(
        plan(indicators=2), state(view, {"confidence": "3", "act:D1:status": "blocked"})
    )
    assert errors == {"ind:I3": "This indicator is no longer part of your contract."}
    view = build_checkin_modal(plan()).to_dict()
    _, errors = parse_page(plan(), state(view, {"confidence": "3", "act:D1:status": "paused"}))
    assert errors == {"act:D1:status": "Choose a status."}


def test_answers_survive_a_round_trip_through_json() -> None:
    view = build_checkin_modal(plan()).to_dict()
    answers, _ = parse_page(
        plan(),
        state(
            view,
            {
                "confidence": "4",
                "ind:I1": "3",
                "ev1_item": "expectation:E1",
                "ev1_note": "Board memo",
                "risk1": "Hiring freeze",
                "risk1_help": ["help"],
            },
        ),
    )
    from bot.checkins.model import Answers

    again = Answers.from_json(json.loads(json.dumps(answers.to_json())))
    assert again == answers


def test_button_targets() -> None:
    assert target_of({"value": json.dumps({"contract_id": 3, "period": "2027-W10"})}) == (
        3,
        "2027-W10",
    )
    assert target_of({"block_id": f"{ACTIONS_BLOCK}:3:2027-W10"}) == (3, "2027-W10")
    assert target_of({"value": "nonsense", "block_id": "x"}) is None


def asked_with_a_last_value() -> Plan:
    p = plan()
    for n, ask in enumerate(p.indicators, start=1):
        ask.previous = Measurement(
            id=n, indicator_id=ask.indicator.id or 0, value=40.0, measured_at=FEB_3
        )
    return p


def test_the_last_value_is_a_placeholder_and_no_change_a_checkbox() -> None:
    p = asked_with_a_last_value()
    view = build_checkin_modal(p).to_dict()
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    i1 = blocks["ind:I1"]
    assert "initial_value" not in i1["element"]
    assert i1["element"]["placeholder"]["text"] == "Last 40 days on 3 Feb 2027"
    assert "last 40 days on 3 Feb 2027" in i1["hint"]["text"]
    same = blocks["same:I1"]
    assert same["optional"] and same["element"]["type"] == "checkboxes"
    assert same["element"]["options"][0]["text"]["text"] == "No change: still 40 days"
    assert validate_view(view, kind="modal") == []

    answers, errors = parse_page(p, state(view, {"confidence": "3", "same:I1": ["same"]}))
    assert errors == {}
    assert answers.values == {"I1": 40.0, "I2": None} and answers.confirmed == ["I1"]

    answers, errors = parse_page(
        p, state(view, {"confidence": "3", "same:I2": ["same"], "ind:I2": "40"})
    )
    assert errors == {} and answers.confirmed == ["I2"]  # the same number typed: still a yes


@pytest.mark.parametrize(
    ("values", "errors"),
    [
        ({"same:I1": ["same"], "ind:I1": "38"}, {"ind:I1": "You ticked “no change” (40 days)"}),
        ({"same:I1": ["same"], "ind:I1": "soon"}, {"ind:I1": "“soon” is not a number."}),
    ],
)
def test_no_change_beside_another_number_is_a_field_error(
    values: dict[str, Any], errors: dict[str, str]
) -> None:
    p = asked_with_a_last_value()
    view = build_checkin_modal(p).to_dict()
    _, found = parse_page(p, state(view, {"confidence": "3", **values}))
    assert set(found) == set(errors)
    for block_id, text in errors.items():
        assert text in found[block_id]


def test_pages_count_the_checkbox_of_each_indicator_with_a_last_value() -> None:
    assert [len(page) for page in paginate(asked_with_a_last_value(), page_blocks=8)] == [3, 0]
