"""The import format's view of a stored contract: which table holds each list, the contract
as a document (`snapshot`), and the differences of two documents as readable paths."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlmodel import SQLModel

from bot.contracts.schema import canonical
from bot.core import rules
from storage.models import (
    Barrier,
    DevelopmentActivity,
    Expectation,
    Milestone,
    Resource,
    Role,
    SuccessIndicator,
)
from storage.queries.contracts import ContractBundle


@dataclass(frozen=True, slots=True)
class _ItemList:
    """How one list of the document is stored: its table, bundle list and columns."""

    model: type[SQLModel]
    bundle_list: str
    columns: dict[str, str]  # document field -> column
    evidence_type: str | None = None  # `Evidence.item_type`, as bot.contracts names the kinds

    @property
    def keyed(self) -> bool:
        return "key" in self.columns


ITEM_LISTS = {
    "expectations": _ItemList(
        Expectation, "expectations", {"key": "key", "kind": "kind", "text": "text"}, "expectation"
    ),
    "development_activities": _ItemList(
        DevelopmentActivity,
        "activities",
        {
            "key": "key",
            "title": "title",
            "modality": "modality",
            "expectation": "expectation_key",
            "start": "start",
            "due": "due",
            "demonstration": "demonstration",
        },
        "activity",
    ),
    "success_indicators": _ItemList(
        SuccessIndicator,
        "indicators",
        {
            "key": "key",
            "name": "name",
            "unit": "unit",
            "baseline": "baseline",
            "target": "target",
            "direction": "direction",
            "source": "source",
            "cadence": "cadence",
        },
        "indicator",
    ),
    "milestones": _ItemList(
        Milestone,
        "milestones",
        {
            "key": "key",
            "title": "title",
            "due": "due",
            "indicator": "indicator_key",
            "threshold": "threshold",
            "activity": "activity_key",
        },
        "milestone",
    ),
    "resources": _ItemList(Resource, "resources", {"kind": "kind", "text": "text"}),
    "barriers": _ItemList(Barrier, "barriers", {"risk": "risk", "contingency": "contingency"}),
}


def snapshot(bundle: ContractBundle) -> dict[str, Any]:
    """The contract as a document of the import format, people as Slack user ids."""
    c = bundle.contract
    data = {
        "title": c.title,
        "leader": c.leader_id,
        "sponsor": c.sponsor_id,
        "period": {"start": c.period_start, "end": c.period_end},
        "mission": c.mission,
        **{
            name: [
                {f: getattr(row, column) for f, column in items.columns.items()}
                for row in getattr(bundle, items.bundle_list)
            ]
            for name, items in ITEM_LISTS.items()
        },
        "checkin": {
            "weekday": rules.WEEKDAY_NAMES[c.checkin_weekday % 7],
            "time": c.checkin_time,
            "timezone": c.checkin_timezone,
        },
        "feedback": {
            "cadence": c.feedback_cadence,
            "reviewers": bundle.reviewers,
            "peers": bundle.peers,
            "direct_reports": bundle.direct_reports,
            "stakeholders": bundle.stakeholders,
            "anonymity_threshold": c.anonymity_threshold,
        },
        "digest": {
            "cadence": c.digest_cadence,
            "weekday": rules.WEEKDAY_NAMES[c.digest_weekday % 7],
            "time": c.digest_time,
        },
        "governance": {
            "owner": c.owner_id,
            "approvers": bundle.approvers,
            "escalation": bundle.escalation,
            "escalation_days": c.escalation_days,
            "reporting": c.reporting,
            **_report_of(bundle),  # type: ignore[dict-item]
        },
        "recognition": {"channel": c.recognition_channel},
    }
    result: dict[str, Any] = canonical(data)
    return result


def _report_of(bundle: ContractBundle) -> dict[str, Any]:
    """`report` of the governance, only when it names a cadence: a contract without one keeps
    the document (and so the terms' fingerprint) it had before the field existed."""
    c = bundle.contract
    if not c.report_cadence:
        return {}
    report: dict[str, Any] = {"cadence": c.report_cadence}
    if c.report_channel:
        report["channel"] = c.report_channel
    report["readers"] = bundle.people_with(Role.report_reader)
    return {"report": report}


def diff_documents(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The differences of two canonical documents as readable paths.

    `success_indicators[I2].target: 30 -> 28`, `milestones[M4]: added`, ...
    """
    return list(_diff(before, after, ""))


def _diff(before: Any, after: Any, path: str) -> Iterator[str]:
    if isinstance(before, dict | None) and isinstance(after, dict | None):
        old, new = before or {}, after or {}
        for name in [*new, *(name for name in old if name not in new)]:
            yield from _diff(old.get(name), new.get(name), f"{path}.{name}" if path else name)
    elif _keyed(before) and _keyed(after):
        old = {item["key"]: item for item in before}
        new = {item["key"]: item for item in after}
        for key, item in new.items():
            if key in old:
                yield from _diff(old[key], item, f"{path}[{key}]")
            else:
                yield f"{path}[{key}]: added"
        yield from (f"{path}[{key}]: removed" for key in old if key not in new)
        if [key for key in old if key in new] != [key for key in new if key in old]:
            yield f"{path}: new order {', '.join(new)}"
    elif _records(before) and _records(after):
        for index in range(max(len(before), len(after))):
            if index >= len(before):
                yield f"{path}[{index}]: added"
            elif index >= len(after):
                yield f"{path}[{index}]: removed"
            else:
                yield from _diff(before[index], after[index], f"{path}[{index}]")
    elif before != after:
        yield f"{path}: {_show(before)} -> {_show(after)}"


def _records(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _keyed(value: Any) -> bool:
    return _records(value) and all("key" in item for item in value)


def _show(value: Any, limit: int = 60) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return "[" + ", ".join(_show(item, limit) for item in value) + "]"
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
