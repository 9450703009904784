"""The draft editor as a pure builder: valid Block Kit however much a draft holds."""

from __future__ import annotations

from datetime import date
from typing import Any

from bot.contracts.blocks import ITEMS_WITH_BUTTONS, build_draft_editor, build_item_modal
from bot.ui.metadata import DraftItemRef
from storage.models import (
    Barrier,
    Contract,
    DevelopmentActivity,
    Expectation,
    Milestone,
    Resource,
    SuccessIndicator,
)
from storage.queries.contracts import ContractBundle

TODAY = date(2027, 3, 10)


def big_draft(n: int) -> ContractBundle:
    contract = Contract(
        id=7,
        title="A <big> & busy draft",
        leader_id="U0LEAD001",
        sponsor_id="U0SPON001",
        owner_id=None,
        period_start=date(2027, 4, 5),
        period_end=date(2028, 3, 17),
    )
    due = date(2027, 6, 1)
    return ContractBundle(
        contract=contract,
        expectations=[
            Expectation(id=i, contract_id=7, key=f"E{i}", kind="impact", text="x" * 900)
            for i in range(1, n + 1)
        ],
        activities=[
            DevelopmentActivity(
                id=i, contract_id=7, key=f"D{i}", title="t" * 300, modality="coaching", due=due
            )
            for i in range(1, n + 1)
        ],
        indicators=[
            SuccessIndicator(
                id=i,
                contract_id=7,
                key=f"I{i}",
                name="n" * 200,
                baseline=1,
                target=2,
                direction="increase",
                cadence="monthly",
            )
            for i in range(1, n + 1)
        ],
        milestones=[
            Milestone(id=i, contract_id=7, key=f"M{i}", title="m" * 300, due=due)
            for i in range(1, n + 1)
        ],
        resources=[
            Resource(id=i, contract_id=7, kind="budget", text="<r>" * 300) for i in range(1, n + 1)
        ],
        barriers=[
            Barrier(id=i, contract_id=7, risk="*b*" * 300, contingency="c") for i in range(1, n + 1)
        ],
    )


def test_a_full_draft_makes_a_valid_editor_with_edit_and_remove_for_its_first_items() -> None:
    view = build_draft_editor(big_draft(30), today=TODAY).to_dict()  # slack_sdk validates
    assert len(view["blocks"]) <= 100
    actions = [b for b in view["blocks"] if b.get("block_id", "").startswith("items_")]
    assert len(actions) == 6
    for block in actions:
        assert len(block["elements"]) == 2 * ITEMS_WITH_BUTTONS <= 25
    ids = [e["action_id"] for b in actions for e in b["elements"]]
    assert len(ids) == len(set(ids))  # unique in the whole view, not only in each block
    texts = [e["text"]["text"] for b in actions for e in b["elements"]]
    assert texts[:4] == ["Edit E1", "Remove E1", "Edit E2", "Remove E2"]
    assert "Remove R12" in texts and "Edit B3" in texts
    remove = next(e for e in actions[4]["elements"] if e["text"]["text"] == "Remove R1")
    assert remove["confirm"]["text"]["text"].startswith("“&lt;r&gt;")
    assert len(remove["confirm"]["text"]["text"]) <= 300
    assert DraftItemRef.read(remove["value"]) == DraftItemRef(
        contract_id=7, kind="resource", item_id=1
    )
    assert "no owner yet" in str(view)


def test_confirmations_quote_escaped_text_within_slacks_limit() -> None:
    bundle = big_draft(1)
    bundle.contract.title = "&" * 200
    bundle.barriers[0].risk = "<" * 1000
    view = build_draft_editor(bundle, today=TODAY).to_dict()  # slack_sdk refuses > 300
    discard = next(e for b in view["blocks"] for e in b.get("elements", []) if "confirm" in e)
    assert discard["confirm"]["text"]["text"].startswith("“&amp;&amp;")
    assert "&lt;" in str(view) and "<<" not in str(view)


def test_each_item_form_comes_back_filled_in_and_valid() -> None:
    bundle = big_draft(2)
    items: list[tuple[str, Any]] = [
        ("expectation", bundle.expectations[1]),
        ("activity", bundle.activities[0]),
        ("indicator", bundle.indicators[0]),
        ("milestone", bundle.milestones[0]),
        ("resource", bundle.resources[0]),
        ("barrier", bundle.barriers[1]),
    ]
    for kind, item in items:
        view = build_item_modal(kind, bundle, item).to_dict()
        assert view["callback_id"] == f"contract_edit_item:{kind}"
        assert DraftItemRef.read(view["private_metadata"]) == DraftItemRef(
            contract_id=7,
            kind=kind,
            item_id=item.id,
        )
    view = build_item_modal("barrier", bundle, bundle.barriers[1]).to_dict()
    assert view["title"]["text"] == "Edit B2"
