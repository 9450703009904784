"""The contract import format (shared/examples/contract.yml) as pydantic models, and its checks.

`parse_documents` reads a YAML or JSON file into plain documents; `validate_document` checks
one and reports every problem as `path: message`, with paths such as
`success_indicators[1].target`. `normalised` gives the canonical dict of a valid document:
the same shape `bot.contracts.document.snapshot` builds from the database, so the two compare equal
exactly when nothing changed.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import reprlib
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from bot.core import rules
from bot.risks.model import DEFAULT_ESCALATION_DAYS, MAX_ESCALATION_DAYS, source_problem

Loc = tuple[str | int, ...]

MAX_FILE_CHARS = 1_000_000
MAX_FILE_BYTES = 2**20  # 1 MiB: refused before it is read, whatever the file claims
MAX_DEPTH = 32  # a contract is five levels deep; nothing sane is deeper than this
MAX_VALUES = 100_000  # every value counted as often as a YAML alias repeats it
SHOWN_CHARS = 80  # of a value quoted back in a problem
MAX_ITEMS = 50
LONG_TEXT = 3000  # a Block Kit section's text limit: every free text is shown in one

SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,31}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CHANNEL = re.compile(r"^[CG][A-Z0-9]{2,31}$")
KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,15}$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class DocumentError(ValueError):
    """A file that is not a readable contract document; the message says where and why."""


class FieldProblems(ValueError):
    """Problems found across fields, each at a location relative to the model that found them."""

    def __init__(self, problems: Sequence[tuple[Loc, str]]) -> None:
        super().__init__("; ".join(f"{format_loc(loc)}: {message}" for loc, message in problems))
        self.problems = list(problems)


_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = SHOWN_CHARS
_SHOWN.maxlevel = 2


def shown(value: Any) -> str:
    """A value quoted back in a problem, cut to about `SHOWN_CHARS` characters however large
    it is (a 900 KB string repeated by YAML aliases stays a short line)."""
    return _SHOWN.repr(value)


def format_loc(loc: Loc) -> str:
    """('success_indicators', 1, 'target') -> 'success_indicators[1].target'."""
    path = ""
    for part in loc:
        name = str(part) if len(str(part)) <= SHOWN_CHARS else shown(str(part))
        path += f"[{part}]" if isinstance(part, int) else f".{name}" if path else name
    return path or "(document)"


def is_email(person: str) -> bool:
    return EMAIL.fullmatch(person.strip()) is not None


# --- field types ----------------------------------------------------------------------


def _person(value: str) -> str:
    if SLACK_USER.fullmatch(value) or (EMAIL.fullmatch(value) and len(value) <= 254):
        return value
    raise ValueError(
        f"must be a Slack user id (such as U0LEAD001) or an e-mail address, got {shown(value)}"
    )


def _key(value: str) -> str:
    if KEY.fullmatch(value):
        return value
    raise ValueError(
        "must be a key of 1 to 16 capital letters, digits or _, starting with a letter "
        f"(such as I1), got {shown(value)}"
    )


def _channel(value: str) -> str:
    if CHANNEL.fullmatch(value):
        return value
    raise ValueError(f"must be a Slack channel id such as C0WINS001, got {shown(value)}")


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"{shown(value)} is not an IANA time zone such as Europe/Berlin") from None
    return value


def _day(value: Any) -> Any:
    if isinstance(value, datetime):
        raise ValueError("must be a date (YYYY-MM-DD) without a time")
    if isinstance(value, date):
        return value
    if isinstance(value, str) and ISO_DATE.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{shown(value)} is not a day of the calendar") from None
    raise ValueError(f"must be a date YYYY-MM-DD, got {shown(value)}")


def _time(value: Any) -> Any:
    if isinstance(value, str) and rules.TIME.fullmatch(value.strip()):
        return value.strip()
    raise ValueError(f'must be a time "HH:MM" (24-hour clock) such as "15:00", got {shown(value)}')


def _number(value: float) -> float:
    try:
        return rules.check_number(value)
    except ValueError:
        raise ValueError(
            f"must be a number between -{rules.MAX_NUMBER:,.0f} and {rules.MAX_NUMBER:,.0f}"
        ) from None


def _one_of(choices: Sequence[str], *, fold_case: bool = False) -> Callable[[str], str]:
    def check(value: str) -> str:
        if fold_case:
            value = value.lower()
        if value in choices:
            return value
        raise ValueError(f"must be one of {', '.join(choices)}, got {shown(value)}")

    return check


def _text(max_length: int, *, min_length: int = 1) -> StringConstraints:
    return StringConstraints(min_length=min_length, max_length=max_length)


Person = Annotated[str, AfterValidator(_person)]
Key = Annotated[str, AfterValidator(_key)]
Day = Annotated[date, BeforeValidator(_day)]
ClockTime = Annotated[str, BeforeValidator(_time)]
Number = Annotated[float, Field(strict=True, allow_inf_nan=False), AfterValidator(_number)]
Weekday = Annotated[str, AfterValidator(_one_of(rules.WEEKDAY_NAMES, fold_case=True))]
TimeZone = Annotated[str, _text(64), AfterValidator(_timezone)]
ChannelId = Annotated[str, AfterValidator(_channel)]
LongText = Annotated[str, _text(LONG_TEXT)]


def _items(max_length: int = MAX_ITEMS, *, min_length: int = 0) -> Any:
    return Field(default_factory=list, min_length=min_length, max_length=max_length)


# --- the document ---------------------------------------------------------------------


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Period(_Part):
    start: Day
    end: Day

    @model_validator(mode="after")
    def _end_after_start(self) -> Self:
        problem = rules.period_problem(self.start, self.end)
        if problem:
            raise FieldProblems([(("end",), f"{problem} ({self.start.isoformat()})")])
        return self


class ExpectationItem(_Part):
    key: Key
    kind: Annotated[str, AfterValidator(_one_of(rules.EXPECTATION_KINDS))]
    text: LongText


class ActivityItem(_Part):
    key: Key
    title: Annotated[str, _text(300)]
    modality: Annotated[str, AfterValidator(_one_of(rules.MODALITIES))]
    expectation: Key
    start: Day | None = None
    due: Day
    demonstration: LongText

    @model_validator(mode="after")
    def _start_before_due(self) -> Self:
        if self.start is not None and self.start > self.due:
            raise FieldProblems(
                [(("start",), f"must be on or before due ({self.due.isoformat()})")]
            )
        return self


class IndicatorItem(_Part):
    key: Key
    name: Annotated[str, _text(200)]
    unit: Annotated[str, _text(32, min_length=0)]
    baseline: Number
    target: Number
    direction: Annotated[str, AfterValidator(_one_of(rules.DIRECTIONS))]
    source: Annotated[str, _text(200)]
    cadence: Annotated[str, AfterValidator(_one_of(rules.INDICATOR_CADENCES))]

    @model_validator(mode="after")
    def _target_fits_direction(self) -> Self:
        problem = rules.target_problem(self.baseline, self.target, self.direction)
        if problem:
            raise FieldProblems([(("target",), problem)])
        computed = source_problem(self.source)
        if computed:
            raise FieldProblems([(("source",), computed)])
        return self


class MilestoneItem(_Part):
    key: Key
    title: Annotated[str, _text(300)]
    due: Day
    indicator: Key | None = None
    threshold: Number | None = None
    activity: Key | None = None

    @model_validator(mode="after")
    def _one_way_to_decide(self) -> Self:
        if self.indicator is not None and self.activity is not None:
            raise FieldProblems(
                [((), "is decided by an indicator (with threshold) or by an activity, not both")]
            )
        if self.indicator is None and self.activity is None:
            raise FieldProblems(
                [((), "needs an indicator and threshold, or an activity, to be decided by")]
            )
        if self.indicator is not None and self.threshold is None:
            raise FieldProblems([(("threshold",), "required with indicator")])
        if self.activity is not None and self.threshold is not None:
            raise FieldProblems([(("threshold",), "only goes with indicator, not activity")])
        return self


class ResourceItem(_Part):
    kind: Annotated[str, AfterValidator(_one_of(rules.RESOURCE_KINDS))]
    text: LongText


class BarrierItem(_Part):
    risk: LongText
    contingency: LongText


class CheckinBlock(_Part):
    weekday: Weekday = "friday"
    time: ClockTime = "15:00"
    timezone: TimeZone | None = None


class FeedbackBlock(_Part):
    cadence: Annotated[str, AfterValidator(_one_of(rules.INDICATOR_CADENCES))] | None = None
    reviewers: list[Person] = _items()
    # Rater groups: reviewers whose relationship to the leader is known (a plain reviewer is
    # asked when they give). All of them are asked on the cadence.
    peers: list[Person] = _items()
    direct_reports: list[Person] = _items()
    stakeholders: list[Person] = _items()
    anonymity_threshold: Annotated[int, Field(strict=True, ge=2, le=100)] = 3


class DigestBlock(_Part):
    cadence: Annotated[str, AfterValidator(_one_of(rules.DIGEST_CADENCES))] = "monthly"
    weekday: Weekday = "monday"
    time: ClockTime = "09:00"


NO_REPORT_AUDIENCE = "needs a channel or readers: a report on a cadence goes to them"


class ReportBlock(_Part):
    """The period report on a schedule: its cadence, and a channel or the readers' DMs.
    The readers may also ask for it with `/contract report`."""

    cadence: Annotated[str, AfterValidator(_one_of(rules.REPORT_CADENCES, fold_case=True))]
    channel: ChannelId | None = None
    readers: list[Person] = _items()

    @model_validator(mode="after")
    def _goes_somewhere(self) -> Self:
        if self.channel is None and not self.readers:
            raise ValueError(NO_REPORT_AUDIENCE)
        return self


class GovernanceBlock(_Part):
    owner: Person | None = None
    approvers: list[Person] = _items()
    escalation: list[Person] = _items()
    # An open risk that needs help goes to the escalation contacts after this many days.
    escalation_days: Annotated[int, Field(strict=True, ge=1, le=MAX_ESCALATION_DAYS)] = (
        DEFAULT_ESCALATION_DAYS
    )
    # How success is reported, in words (kept as written); `report` is what the bot sends.
    reporting: Annotated[str, _text(LONG_TEXT, min_length=0)] = ""
    report: ReportBlock | None = None


class RecognitionBlock(_Part):
    channel: ChannelId | None = None


class ContractDocument(_Part):
    """One contract in the import format; approvers default to the sponsor."""

    title: Annotated[str, _text(200)]
    leader: Person
    sponsor: Person
    period: Period
    mission: LongText
    expectations: list[ExpectationItem] = _items(min_length=1)
    development_activities: list[ActivityItem] = _items(min_length=1)
    success_indicators: list[IndicatorItem] = _items(min_length=1)
    milestones: list[MilestoneItem] = _items(min_length=1)
    resources: list[ResourceItem] = _items()
    barriers: list[BarrierItem] = _items()
    checkin: CheckinBlock = Field(default_factory=CheckinBlock)
    feedback: FeedbackBlock = Field(default_factory=FeedbackBlock)
    digest: DigestBlock = Field(default_factory=DigestBlock)
    governance: GovernanceBlock = Field(default_factory=GovernanceBlock)
    recognition: RecognitionBlock = Field(default_factory=RecognitionBlock)

    @model_validator(mode="after")
    def _cross_check(self) -> Self:
        governance = self.governance
        governance.approvers = list(dict.fromkeys(governance.approvers or [self.sponsor]))
        governance.escalation = list(dict.fromkeys(governance.escalation))
        if governance.report is not None:
            governance.report.readers = list(dict.fromkeys(governance.report.readers))
        self.feedback.reviewers = list(dict.fromkeys(self.feedback.reviewers))
        for group in RATER_GROUPS:
            setattr(self.feedback, group, list(dict.fromkeys(getattr(self.feedback, group))))
        problems = [*_people_problems(self.leader, self.sponsor)]
        problems += _group_problems(self)
        problems += _document_problems(_Parts.of(self))
        if problems:
            raise FieldProblems(problems)
        return self


KEYED_LISTS: dict[str, type[BaseModel]] = {
    "expectations": ExpectationItem,
    "development_activities": ActivityItem,
    "success_indicators": IndicatorItem,
    "milestones": MilestoneItem,
}


@dataclass
class _Parts:
    """What the cross-part rules look at; for an invalid document, its valid parts."""

    period: Period | None
    items: dict[str, list[tuple[int, Any]]]  # the valid items of each keyed list, indexed
    keys: dict[str, list[tuple[int, str]]]  # every key as written, indexed

    @classmethod
    def of(cls, doc: ContractDocument) -> _Parts:
        items = {name: list(enumerate(getattr(doc, name))) for name in KEYED_LISTS}
        keys = {name: [(i, item.key) for i, item in found] for name, found in items.items()}
        return cls(doc.period, items, keys)

    @classmethod
    def salvage(cls, data: dict[str, Any]) -> _Parts:
        """The parts of an invalid document that are valid on their own."""

        def valid(model: type[BaseModel], value: Any) -> Any:
            try:
                return model.model_validate(value)
            except ValidationError:
                return None

        items: dict[str, list[tuple[int, Any]]] = {}
        keys: dict[str, list[tuple[int, str]]] = {}
        for name, model in KEYED_LISTS.items():
            raw = data.get(name)
            written = list(enumerate(raw)) if isinstance(raw, list) else []
            items[name] = [(i, item) for i, v in written if (item := valid(model, v)) is not None]
            keys[name] = [
                (i, v["key"].strip())
                for i, v in written
                if isinstance(v, dict) and isinstance(v.get("key"), str)
            ]
        return cls(valid(Period, data.get("period")), items, keys)


def _people_problems(leader: Any, sponsor: Any) -> Iterator[tuple[Loc, str]]:
    """A leader does not sponsor their own contract (as the draft modal refuses it too)."""
    if isinstance(leader, str) and isinstance(sponsor, str) and leader.strip() == sponsor.strip():
        yield ("sponsor",), f"must not be the leader ({leader.strip()}): choose another person"


RATER_GROUPS = ("peers", "direct_reports", "stakeholders")


def _group_problems(doc: ContractDocument) -> Iterator[tuple[Loc, str]]:
    """A person is in one rater group at most, and never the leader or the sponsor there
    (their views are the self view and the sponsor's)."""
    seen: dict[str, str] = {}
    for group in RATER_GROUPS:
        for index, person in enumerate(getattr(doc.feedback, group)):
            where = ("feedback", group, index)
            if person == doc.leader:
                yield where, "is the leader, whose own view is the self view: leave them out"
            elif person == doc.sponsor:
                yield where, "is the sponsor, who gives feedback as the sponsor: leave them out"
            elif person in seen:
                yield where, f"is already in feedback.{seen[person]}: one group per person"
            else:
                seen[person] = group


def _document_problems(parts: _Parts) -> Iterator[tuple[Loc, str]]:
    """Rules that need more than one part of the document: keys, references, dates."""
    for name, keys in parts.keys.items():
        first: dict[str, int] = {}
        for index, key in keys:
            if key in first:
                yield (
                    (name, index, "key"),
                    f"duplicate key {key} (already used by {name}[{first[key]}])",
                )
            else:
                first[key] = index

    known = {name: {key for _, key in keys} for name, keys in parts.keys.items()}
    indicators = {item.key: item for _, item in parts.items["success_indicators"]}

    def dangling(key: str, name: str, what: str) -> str:
        return f"no {what} with key {key} (keys: {', '.join(sorted(known[name])) or 'none'})"

    def outside(loc: Loc, day: date | None) -> Iterator[tuple[Loc, str]]:
        period = parts.period
        if day is not None and period is not None:
            problem = rules.date_problem(day, period.start, period.end)
            if problem:
                yield loc, f"{day} {problem}"

    for index, activity in parts.items["development_activities"]:
        loc: Loc = ("development_activities", index)
        if activity.expectation not in known["expectations"]:
            yield (
                (*loc, "expectation"),
                dangling(activity.expectation, "expectations", "expectation"),
            )
        yield from outside((*loc, "start"), activity.start)
        yield from outside((*loc, "due"), activity.due)

    for index, milestone in parts.items["milestones"]:
        loc = ("milestones", index)
        yield from outside((*loc, "due"), milestone.due)
        if (
            milestone.activity is not None
            and milestone.activity not in known["development_activities"]
        ):
            yield (
                (*loc, "activity"),
                dangling(milestone.activity, "development_activities", "activity"),
            )
        if milestone.indicator is None or milestone.threshold is None:
            continue
        if milestone.indicator not in known["success_indicators"]:
            yield (
                (*loc, "indicator"),
                dangling(milestone.indicator, "success_indicators", "success indicator"),
            )
            continue
        indicator = indicators.get(milestone.indicator)
        if indicator is None:
            continue
        problem = rules.threshold_problem(indicator.baseline, indicator.target, milestone.threshold)
        if problem:
            yield (
                (*loc, "threshold"),
                f"{number(milestone.threshold)} {problem} "
                f"({indicator.key}: {number(indicator.baseline)} -> {number(indicator.target)})",
            )


# --- validation and the canonical form ------------------------------------------------


def validate_document(data: Any) -> tuple[ContractDocument | None, list[str]]:
    """The document, or None and every problem found as `path: message`."""
    try:
        return ContractDocument.model_validate(data), []
    except ValidationError as error:
        errors = error.errors()
    problems = [problem for details in errors for problem in _describe(details)]
    checked = any(not details["loc"] for details in errors)
    if isinstance(data, dict) and not checked:
        # Field errors stop pydantic before the cross-part rules: run them on what is valid.
        salvaged = [*_people_problems(data.get("leader"), data.get("sponsor"))]
        salvaged += _document_problems(_Parts.salvage(data))
        problems += [f"{format_loc(loc)}: {message}" for loc, message in salvaged]
    return None, list(dict.fromkeys(problems))


def _describe(details: ErrorDetails) -> Iterator[str]:
    loc: Loc = tuple(details["loc"])
    found = details.get("ctx", {}).get("error")
    if isinstance(found, FieldProblems):
        for relative, message in found.problems:
            yield f"{format_loc(loc + relative)}: {message}"
        return
    kind = details["type"]
    if kind == "missing":
        message = "required"
    elif kind == "extra_forbidden":
        message = _unknown_field(loc)
    elif kind in {"model_type", "model_attributes_type", "dict_type"}:
        fields = _fields_at(loc)
        message = "must be a mapping" + (f" of {', '.join(fields)}" if fields else "")
    else:
        message = details["msg"].removeprefix("Value error, ")
    yield f"{format_loc(loc)}: {message}"


def _unknown_field(loc: Loc) -> str:
    fields = _fields_at(loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), fields, n=1)
    if close:
        return f"unknown field; did you mean {close[0]}?"
    return "unknown field" + (f" (expected: {', '.join(fields)})" if fields else "")


def _fields_at(loc: Loc) -> list[str]:
    """The field names of the model found at `loc` in a ContractDocument."""
    model: type[BaseModel] = ContractDocument
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        found = _model_in(field.annotation) if field is not None else None
        if found is None:
            return []
        model = found
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def number(value: float) -> int | float:
    """62.0 -> 62: numbers keep the form they were written in."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def canonical(value: Any) -> Any:
    """The comparable, JSON-ready form: ISO dates, integral numbers as int, no None or {}."""
    if isinstance(value, dict):
        tidy = {key: canonical(item) for key, item in value.items() if item is not None}
        return {key: item for key, item in tidy.items() if item != {}}
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    if isinstance(value, float):
        return number(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def normalised(doc: ContractDocument) -> dict[str, Any]:
    """The canonical dict of a document, comparable with `contract_io.snapshot`."""
    result: dict[str, Any] = canonical(doc.model_dump())
    return result


# --- reading files --------------------------------------------------------------------

_YAML_KEPT = {
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:merge",
    "tag:yaml.org,2002:value",
}


def _implicit_resolvers() -> dict[Any, list[tuple[str, re.Pattern[str]]]]:
    """YAML 1.2 plain scalars: `15:00`, `010` and `no` stay text, `1e5` is a number."""
    table: dict[Any, list[tuple[str, re.Pattern[str]]]] = {
        first: [(tag, regexp) for tag, regexp in entries if tag in _YAML_KEPT]
        for first, entries in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
    }
    scalars = [
        ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
        ("tag:yaml.org,2002:int", r"^[-+]?(?:0|[1-9][0-9]*)$", "-+0123456789"),
        (
            "tag:yaml.org,2002:float",
            r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"
            r"|^[-+]?[0-9]+[eE][-+]?[0-9]+$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$",
            "-+0123456789.",
        ),
    ]
    for tag, pattern, firsts in scalars:
        for first in firsts:
            table.setdefault(first, []).append((tag, re.compile(pattern)))
    return table


_RESOLVERS = _implicit_resolvers()


class _Loader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys and nesting deeper than `MAX_DEPTH` (PyYAML
    composes recursively: 100,000 `[` would exhaust the stack), and reads plain scalars as
    YAML 1.2 does."""

    yaml_implicit_resolvers = _RESOLVERS
    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {shown(key_node.value)}", key_node.start_mark
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


class _Dumper(yaml.SafeDumper):
    """Quotes every string that either YAML 1.1 or `_Loader` would read as something else."""

    yaml_implicit_resolvers = _RESOLVERS
    _yaml11 = yaml.resolver.Resolver()

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> Any:
        tag = super().resolve(kind, value, implicit)
        if kind is yaml.ScalarNode and tag == "tag:yaml.org,2002:str" and implicit[0]:
            return self._yaml11.resolve(kind, value, implicit)
        return tag


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    """Multi-line text as a literal block; times quoted, as contract.yml writes them."""
    style = "|" if "\n" in value else '"' if rules.TIME.fullmatch(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def yaml_dump(docs: Sequence[Any]) -> str:
    """YAML that `parse_documents` reads back to the same data: one document or a stream."""
    return yaml.dump_all(
        docs,
        Dumper=_Dumper,
        explicit_start=len(docs) > 1,
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )


def parse_documents(text: str, *, filename: str) -> list[dict[str, Any]]:
    """The documents of a YAML file (a `---` stream too) or a JSON object or list.

    Raises DocumentError with one message, naming the line and column of a syntax error.
    """
    if len(text) > MAX_FILE_CHARS:
        raise DocumentError(f"{filename}: larger than {MAX_FILE_CHARS:,} characters")
    if filename.lower().endswith(".json") or text.lstrip().startswith(("{", "[")):
        data = _load_json(text, filename)
        found = data if isinstance(data, list) else [data]
    else:
        found = [doc for doc in _load_yaml(text, filename) if doc is not None]
        if len(found) == 1 and isinstance(found[0], list):
            found = found[0]
    if not found:
        raise DocumentError(f"{filename}: no contract in the file")
    _check_shape(found, filename)
    for index, doc in enumerate(found, 1):
        if not isinstance(doc, dict):
            where = f"document {index}" if len(found) > 1 else "the document"
            raise DocumentError(
                f"{filename}: {where} is a {_kind(doc)}, not a mapping of contract fields"
            )
    return found


def _check_shape(data: Any, filename: str) -> None:
    """Refuse data nested deeper than `MAX_DEPTH` or holding more than `MAX_VALUES` values,
    counting a YAML alias each time it is used (so "billion laughs" stops here)."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise DocumentError(
                f"{filename}: more than {MAX_VALUES:,} values (YAML aliases count each time "
                "they are used); a contract holds far fewer"
            )
        if depth > MAX_DEPTH:
            raise DocumentError(f"{filename}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            stack.extend((item, depth + 1) for pair in node.items() for item in pair)
        elif isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)


def _kind(value: Any) -> str:
    kinds = {list: "list", str: "text", bool: "true/false value", int: "number", float: "number"}
    return kinds.get(type(value), type(value).__name__)


def _load_json(text: str, filename: str) -> Any:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise DocumentError(f"{filename}: duplicate key {shown(duplicates[0])}")
        return dict(pairs)

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as error:
        raise DocumentError(
            f"{filename}: line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    except RecursionError:
        raise DocumentError(f"{filename}: nested deeper than {MAX_DEPTH} levels") from None


def _load_yaml(text: str, filename: str) -> list[Any]:
    try:
        return list(yaml.load_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = error.problem or error.context or "not valid YAML"
        if error.context and error.problem:
            what += f" ({error.context})"
        raise DocumentError(f"{filename}: {where}{what}") from None
    except yaml.YAMLError as error:
        raise DocumentError(f"{filename}: not valid YAML: {error}") from None
