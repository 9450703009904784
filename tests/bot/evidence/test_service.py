"""Evidence as pure functions: excerpts, stale items, the summary's lines, the modal."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from bot.evidence.blocks import build_evidence_modal, evidence_lines
from bot.evidence.forms import excerpt_of, read_metadata
from bot.evidence.model import SourceMessage, parse_item, stale_items
from storage.models import (
    Contract,
    DevelopmentActivity,
    Evidence,
    Expectation,
    SuccessIndicator,
)
from storage.queries.contracts import ContractBundle


def bundle(**evidence_latest: datetime) -> ContractBundle:
    contract = Contract(
        id=1,
        title="Head of Platform",
        leader_id="U0LEAD001",
        sponsor_id="U0SPON001",
        status="active",
        period_start=date(2027, 1, 4),
        period_end=date(2027, 12, 17),
    )
    b = ContractBundle(contract=contract)
    b.indicators = [
        SuccessIndicator(
            contract_id=1,
            key=key,
            name=f"Indicator {key}",
            baseline=0,
            target=1,
            direction="increase",
            cadence="monthly",
        )
        for key in ("I1", "I2")
    ]
    b.activities = [
        DevelopmentActivity(
            contract_id=1, key="D1", title="Coaching", modality="coaching", due=date(2027, 6, 1)
        ),
        DevelopmentActivity(
            contract_id=1,
            key="D2",
            title="Later",
            modality="other",
            start=date(2027, 3, 1),
            due=date(2027, 9, 1),
        ),
        DevelopmentActivity(
            contract_id=1,
            key="D3",
            title="Done",
            modality="other",
            due=date(2027, 2, 1),
            status="done",
        ),
    ]
    b.expectations = [Expectation(contract_id=1, key="E1", kind="impact", text="Own")]
    for item, when in evidence_latest.items():
        item_type = {"I": "indicator", "D": "activity", "E": "expectation"}[item[0]]
        b.evidence_latest[(item_type, item)] = when
        b.evidence_counts[(item_type, item)] = 1
    return b


def test_excerpts_are_folded_and_bounded() -> None:
    assert excerpt_of({"text": "a\n\n  b\tc"}) == "a b c"
    cut = excerpt_of({"text": "word " * 200})
    assert len(cut) == 300 and cut.endswith("…")
    rich = {
        "text": "",
        "blocks": [
            {
                "type": "rich_text",
                "elements": [
                    {
                        "type": "rich_text_section",
                        "elements": [{"type": "text", "text": "From blocks"}],
                    }
                ],
            }
        ],
    }
    assert excerpt_of(rich) == "From blocks"


def test_items_parse_only_known_types() -> None:
    assert parse_item("indicator:I1") == ("indicator", "I1")
    assert parse_item("milestone:M1") is None
    assert parse_item("indicator:") is None
    assert parse_item(None) is None


def test_stale_items_count_from_the_last_evidence_or_the_start() -> None:
    today = date(2027, 3, 10)
    b = bundle(I1=datetime(2027, 3, 1, tzinfo=UTC), D1=datetime(2027, 1, 20, tzinfo=UTC))
    # I1 had evidence 9 days ago; D2 started 9 days ago; D3 is done; the rest are stale.
    assert sorted(stale_items(b, today)) == [
        ("activity", "D1"),
        ("expectation", "E1"),
        ("indicator", "I2"),
    ]
    assert stale_items(b, date(2027, 1, 20)) == []  # nothing is stale in the first 30 days
    b.contract.status = "draft"
    assert stale_items(b, today) == []


def test_summary_lines_show_counts_latest_and_stale() -> None:
    b = bundle(I1=datetime(2027, 3, 1, tzinfo=UTC))
    b.recent_evidence = [
        Evidence(
            contract_id=1,
            item_type="indicator",
            item_key="I1",
            note="Pulse <results>",
            url="https://x.example/1",
            added_by="U0LEAD001",
            created_at=datetime(2027, 3, 1, tzinfo=UTC),
        )
    ]
    lines = evidence_lines(b, date(2027, 3, 10))
    assert lines[0] == "1 piece: I1 1"
    assert "Pulse &lt;results&gt;" in lines[1] and "<@U0LEAD001>" in lines[1]
    assert lines[-1].endswith("No evidence in 30 days: I2, D1, E1")


def test_the_modal_carries_ids_only_and_validates() -> None:
    b = bundle()
    message = SourceMessage("C1", "1.2", "é" * 300, "https://x.example/p1")
    token = "t" * 32
    view = build_evidence_modal(
        [b, b], viewer="U0SPON001", selected=b, message=message, source=token
    )
    data = view.to_dict()
    assert json.loads(data["private_metadata"]) == {"contract_id": 1, "source": token}
    assert read_metadata(data) == (1, token)
    assert len(data["blocks"]) <= 100
