"""Governance terms as pure rules: what is refused, and a change in words."""

from __future__ import annotations

from bot.amendments.model import GovernanceTerms, governance_changes, governance_problems

LEADER = "U0LEAD001"
GOOD = GovernanceTerms(owner="U0HRBP001", approvers=["U0SPON001"], checkin_timezone="Europe/Berlin")


def fields(terms: GovernanceTerms) -> set[str | None]:
    return {p.field for p in governance_problems(LEADER, terms)}


def test_good_terms_pass() -> None:
    assert governance_problems(LEADER, GOOD) == []


def test_each_bad_field_is_named() -> None:
    assert fields(GOOD.model_copy(update={"owner": None})) == {"owner"}
    assert fields(GOOD.model_copy(update={"owner": LEADER})) == {"owner"}
    assert fields(GOOD.model_copy(update={"approvers": []})) == {"approvers"}
    assert fields(GOOD.model_copy(update={"approvers": [LEADER]})) == {"approvers"}
    assert fields(GOOD.model_copy(update={"anonymity_threshold": 1})) == {"anonymity_threshold"}
    assert fields(GOOD.model_copy(update={"reminder_hours": 169})) == {"reminder_hours"}
    assert fields(GOOD.model_copy(update={"checkin_time": "9:5"})) == {"checkin_time"}
    assert fields(GOOD.model_copy(update={"checkin_timezone": "Europe/Nowhere"})) == {
        "checkin_timezone"
    }
    assert fields(GOOD.model_copy(update={"checkin_timezone": "../../etc/passwd"})) == {
        "checkin_timezone"
    }
    assert fields(GOOD.model_copy(update={"digest_cadence": "hourly"})) == {"digest_cadence"}


def test_a_change_in_words() -> None:
    before = GOOD.model_dump(mode="json")
    after = {**before, "owner": "U0NEW0001", "reviewers": ["U0PEER001"], "reminder_hours": 0}
    assert governance_changes(before, after) == [
        "Owner: <@U0HRBP001> → <@U0NEW0001>",
        "Feedback reviewers: nobody → <@U0PEER001>",
        "Reminder after (hours): 24 → no reminder",
    ]
    zoned = {**before, "checkin_timezone": "America/New_York"}
    assert governance_changes(before, zoned) == [
        "Check-in time zone: Europe/Berlin → America/New_York"
    ]
