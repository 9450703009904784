"""What the bot writes into button values and `private_metadata`, and reads back: one model each.

A button's value and a view's private_metadata are what the app wrote, but they come back
in a request, and nothing but these models turns them into ids: a value that is not a
positive whole number a database id column holds (PostgreSQL INTEGER) is no id at all, so
`10**30`, `2**31`, `-1`, `"abc"`, `1.5` or a nested object never reach a query. A model is
written with `write()` and read with `read()` (a button's value, a JSON object) or `of_view()`
(a view's private_metadata); anything that is not one reads as None.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, model_validator

from bot.core.calendar import valid_period
from bot.ui.blocks import VIEW_STACK

MAX_ID = 2**31 - 1  # the largest value of a PostgreSQL INTEGER column, every id's type
MAX_ENCODED = 3000  # private_metadata's limit; a button's value is shorter still
MAX_SMALL = 1000
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def record_id(value: Any) -> int | None:
    """A database id: an int, or a string of ASCII digits, from 1 to `MAX_ID`; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not (0 < len(value) <= len(str(MAX_ID)) and value.isascii() and value.isdigit()):
            return None
        value = int(value)
    if not isinstance(value, int):
        return None
    return value if 1 <= value <= MAX_ID else None


def small_number(value: Any, *, low: int = 0, high: int = MAX_SMALL) -> int | None:
    """A small whole number (a page, a count of misses) from `low` to `high`; else None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if low <= value <= high else None


def json_object(text: Any) -> dict[str, Any]:
    """A JSON object written into a button value or private_metadata; {} for anything else
    (not text, too long, not JSON, nested too deeply, not an object)."""
    if not isinstance(text, str) or len(text) > MAX_ENCODED:
        return {}
    try:
        found = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    return found if isinstance(found, dict) else {}


def _required(read: Any) -> Any:
    def check(value: Any) -> Any:
        found = read(value)
        if found is None:
            raise ValueError("not one")
        return found

    return check


def _token(value: Any) -> str | None:
    return value if isinstance(value, str) and TOKEN.fullmatch(value) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# The fields: required ones make the whole reading None when they are not what they claim;
# `Maybe…` ones read as None on their own.
RecordId = Annotated[int, BeforeValidator(_required(record_id))]
MaybeRecordId = Annotated[int | None, BeforeValidator(record_id)]
Period = Annotated[str, BeforeValidator(_required(valid_period))]
Page = Annotated[int, BeforeValidator(_required(lambda v: small_number(v, low=1)))]
Pages = Annotated[
    int, BeforeValidator(_required(lambda v: small_number(v, low=1, high=VIEW_STACK)))
]
Miss = Annotated[int, BeforeValidator(_required(lambda v: small_number(v, low=1)))]
MaybeToken = Annotated[str | None, BeforeValidator(_token)]
MaybeText = Annotated[str | None, BeforeValidator(_text)]
Truthy = Annotated[bool, BeforeValidator(bool)]


class Metadata(BaseModel):
    """A JSON object the bot writes into Slack and reads back; unknown keys are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    def dump(self) -> str:
        """The JSON text to write (keys in the fields' order)."""
        return json.dumps(self.model_dump(mode="json"))

    @classmethod
    def write(cls, **values: Any) -> str:
        """The JSON text of `values` as the bot writes them: from its own rows, so unchecked."""
        return cls.model_construct(**values).dump()

    @classmethod
    def read(cls, text: Any) -> Self | None:
        """The model in `text` (a button's value, private_metadata), or None."""
        return cls.parse(json_object(text))

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Self | None:
        try:
            return cls.model_validate(data)
        except ValidationError:
            return None

    @classmethod
    def of_view(cls, view: Any) -> Self | None:
        """The model in a view's private_metadata, or None."""
        return cls.read(view.get("private_metadata") if isinstance(view, dict) else None)


class ContractRef(Metadata):
    """A contract: the draft editor and its item modals, Open summary, Continue editing."""

    contract_id: RecordId


class RiskRef(Metadata):
    """A risk: its Resolve button and the resolve modal."""

    risk_id: RecordId


DraftItemKind = Literal["expectation", "activity", "indicator", "milestone", "resource", "barrier"]


class DraftItemRef(Metadata):
    """One item of a draft: the editor's Edit and Remove buttons, and the item's edit modal."""

    contract_id: RecordId
    kind: DraftItemKind
    item_id: RecordId


class CheckinRef(Metadata):
    """One check-in period of a contract: the prompt's buttons (and the skip menu's block)."""

    contract_id: RecordId
    period: Period


class CheckinRecordRef(Metadata):
    """One answered check-in: the digest's More and Reply buttons, and the reply modal."""

    checkin_id: RecordId


class CheckinPage(Metadata):
    """The check-in modal: which period, and which of its pages this is."""

    contract_id: RecordId
    period: Period
    page: Page
    pages: Pages

    @model_validator(mode="after")
    def _page_within(self) -> Self:
        if self.page > self.pages:
            raise ValueError("page past the last")
        return self


class EvidenceModal(Metadata):
    """The evidence modal: the contract shown and the server's token for a shortcut's message."""

    contract_id: MaybeRecordId = None
    source: MaybeToken = None


class FeedbackModal(Metadata):
    """The feedback modal: the contract, and the request it answers, if any."""

    contract_id: MaybeRecordId = None
    request_id: MaybeRecordId = None


class FeedbackRequestRef(Metadata):
    """A request DM's Give feedback button."""

    request_id: RecordId


class FeedbackEntryRef(Metadata):
    """The leader's Acknowledge and Make it an activity under one entry shown to them."""

    feedback_id: RecordId


class MissRef(Metadata):
    """The recalibration buttons: the milestone, and which of its misses they answer."""

    milestone: RecordId
    miss: Miss


class AmendmentForm(Metadata):
    """The amendment form: the contract, the item (`handle`; None for a new one), whether it is
    removed, a fingerprint of the item as the form showed it, and the feedback entry a new
    activity is made from (*Make it an activity*)."""

    contract_id: MaybeRecordId = None
    kind: MaybeText = None
    handle: Any = None
    remove: Truthy = False
    fingerprint: MaybeText = None
    feedback_id: MaybeRecordId = None  # the entry a new activity is made from, if any


class AmendmentRef(Metadata):
    """The reject modal: the amendment rejected."""

    amendment_id: RecordId


REVIEW_PERIOD = re.compile(r"\d{4}-(Q[1-4]|0[1-9]|1[0-2])")
ITEM_KEY = re.compile(r"[A-Z][A-Z0-9_]{0,15}")


def _review_period(value: Any) -> str | None:
    return value if isinstance(value, str) and REVIEW_PERIOD.fullmatch(value) else None


def _item_kind(value: Any) -> str | None:
    return value if value in ("expectation", "indicator") else None


def _item_key(value: Any) -> str | None:
    return value if isinstance(value, str) and ITEM_KEY.fullmatch(value) else None


class ReviewRef(Metadata):
    """An alignment review: the DM's Start button and the review modal."""

    contract_id: RecordId
    period: Annotated[str, BeforeValidator(_required(_review_period))]


class ReviewItemRef(Metadata):
    """The review's follow-up *Amend* button: the item to open the amendment form for."""

    contract_id: RecordId
    kind: Annotated[str, BeforeValidator(_required(_item_kind))]
    key: Annotated[str, BeforeValidator(_required(_item_key))]


class AgreementRef(Metadata):
    """Agree and Ask for a change in an agreement DM, and the change modal: the draft, and
    the version of its terms the message showed."""

    contract_id: RecordId
    version: RecordId


def _lesson_source(value: Any) -> str | None:
    return value if value in ("checkin", "milestone", "risk") else None


class LessonSourceRef(Metadata):
    """*Share as a lesson* and its modal: the check-in, milestone or risk it is shared from."""

    kind: Annotated[str, BeforeValidator(_required(_lesson_source))]
    source_id: RecordId
