"""The models of what the bot writes into button values and private_metadata, read back."""

from __future__ import annotations

import json

import pytest

from bot.ui.metadata import (
    AmendmentForm,
    CheckinPage,
    CheckinRef,
    ContractRef,
    EvidenceModal,
    FeedbackModal,
    MissRef,
)
from tests.security.test_bad_input import FRAGMENTS, PERIODS


@pytest.mark.parametrize("fragment", FRAGMENTS.values(), ids=list(FRAGMENTS))
def test_nothing_but_an_id_reads_as_one(fragment: str) -> None:
    text = f'{{"contract_id": {fragment}, "period": "2027-W10", "page": 1, "pages": 1}}'
    assert ContractRef.read(text) is None
    assert CheckinRef.read(text) is None
    assert CheckinPage.read(text) is None
    assert FeedbackModal.read(text) in (None, FeedbackModal())
    assert ContractRef.read(fragment) is None


@pytest.mark.parametrize("period", PERIODS)
def test_nothing_but_an_iso_week_reads_as_a_period(period: str) -> None:
    assert CheckinRef.read(f'{{"contract_id": 3, "period": {period}}}') is None


def test_what_the_bot_writes_it_reads_back_as_it_wrote_it() -> None:
    written = CheckinPage.write(contract_id=3, period="2027-W10", page=2, pages=2)
    assert written == json.dumps({"contract_id": 3, "period": "2027-W10", "page": 2, "pages": 2})
    assert CheckinPage.read(written) == CheckinPage(
        contract_id=3, period="2027-W10", page=2, pages=2
    )
    assert MissRef.read(MissRef.write(milestone=7, miss=2)) == MissRef(milestone=7, miss=2)
    assert FeedbackModal.write(contract_id=5) == '{"contract_id": 5, "request_id": null}'


def test_pages_stay_within_slack_s_view_stack() -> None:
    def page(number: object, pages: object) -> str:
        return json.dumps({"contract_id": 3, "period": "2027-W10", "page": number, "pages": pages})

    assert CheckinPage.read(page(3, 2)) is None
    assert CheckinPage.read(page(4, 4)) is None
    assert CheckinPage.read(page(3, 3)) == CheckinPage(
        contract_id=3, period="2027-W10", page=3, pages=3
    )


def test_optional_fields_read_as_none_on_their_own() -> None:
    view = {"private_metadata": json.dumps({"contract_id": 4, "source": "short"})}
    assert EvidenceModal.of_view(view) == EvidenceModal(contract_id=4, source=None)
    form = AmendmentForm.read('{"contract_id": -1, "kind": 5, "handle": "M1", "remove": "yes"}')
    assert form == AmendmentForm(contract_id=None, kind=None, handle="M1", remove=True)
