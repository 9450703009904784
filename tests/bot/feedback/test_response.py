"""The leader's answer to an entry, as pure rules: the activity an entry suggests, the states
an amendment made from it reads as, and the buttons that say so."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bot.amendments.model import AmendmentStatus
from bot.feedback.blocks import activity_rationale, entry_actions
from bot.feedback.model import (
    ACTIVITY_OF_STATUS,
    ACTIVITY_TITLE_MAX,
    Response,
    activity_draft,
    activity_title,
    shown_on,
)
from storage.models import Contract, Feedback


def test_the_title_is_the_first_sentence_cut_at_a_word() -> None:
    assert activity_title("She paused the review.  Then she asked.") == "She paused the review"
    assert activity_title("  Many\nspaces   here  ") == "Many spaces here"
    long = "word " * 60
    title = activity_title(long)
    assert len(title) <= ACTIVITY_TITLE_MAX and title.endswith("word…")
    assert activity_title("x" * 300) == "x" * (ACTIVITY_TITLE_MAX - 1) + "…"


def test_every_live_amendment_status_is_one_the_amendments_know() -> None:
    assert set(ACTIVITY_OF_STATUS) == {AmendmentStatus.pending, AmendmentStatus.applied}


def test_the_draft_keeps_an_expectation_the_contract_still_has() -> None:
    contract = Contract(
        title="t",
        leader_id="U1",
        sponsor_id="U2",
        period_start=date(2027, 1, 4),
        period_end=date(2027, 12, 17),
    )
    entry = Feedback(
        contract_id=1, polarity="development", behaviour="Asks first.", expectation_key="E2"
    )
    assert activity_draft(entry, contract, {"E1", "E2"}) == {
        "title": "Asks first",
        "due": "2027-12-17",
        "expectation": "E2",
    }
    assert "expectation" not in activity_draft(entry, contract, {"E1"})


def test_an_anonymous_entry_is_known_by_its_release_not_its_day() -> None:
    entry = Feedback(
        contract_id=1,
        polarity="strength",
        behaviour="b",
        anonymous=True,
        created_at=datetime(2027, 3, 1, tzinfo=UTC),
        released_at=datetime(2027, 3, 9, 8, tzinfo=UTC),
    )
    assert shown_on(entry) == date(2027, 3, 9)
    assert activity_rationale(shown_on(entry), anonymous=True) == (
        "From anonymous feedback of 9 Mar 2027."
    )


def test_the_buttons_say_what_was_done() -> None:
    fresh = entry_actions(7, Response()).to_dict()
    assert [e["text"]["text"] for e in fresh["elements"]] == ["Acknowledge", "Make it an activity"]
    assert fresh["block_id"] == "feedback_entry_7"
    done = entry_actions(
        7, Response(acknowledged_on=date(2027, 3, 10), activity="added", amendment_id=4)
    ).to_dict()
    assert [e["text"]["text"] for e in done["elements"]] == [
        "Acknowledged ✓ 10 Mar 2027",
        "Activity added · #4",
    ]
