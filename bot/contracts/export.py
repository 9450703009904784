"""Contracts out: the import format as YAML or JSON (which import reads back), and CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, date
from typing import Any, Literal

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.contracts.document import snapshot
from bot.contracts.schema import number, yaml_dump
from bot.core.csv_cells import safe_row
from storage.models import Contract
from storage.queries.contracts import ContractBundle, list_contracts, load_bundle

CSV_COLUMNS = (
    "contract_id",
    "contract_title",
    "leader",
    "indicator_key",
    "indicator_name",
    "unit",
    "baseline",
    "target",
    "direction",
    "measured_at",
    "value",
    "source",
    "recorded_by",
    "confirmed",  # "yes": the leader confirmed the last value unchanged, typed no new one
)


async def count_contracts(
    *, session: AsyncSession, contract_ids: Sequence[int] | None, leader_id: str | None
) -> int:
    """How many contracts an export with these filters covers (all when both are None)."""
    return len(await _chosen(session, contract_ids, leader_id))


async def _chosen(
    session: AsyncSession, contract_ids: Sequence[int] | None, leader_id: str | None
) -> list[Contract]:
    found = await list_contracts(session=session, contract_ids=contract_ids)
    return [c for c in found if leader_id is None or c.leader_id == leader_id]


async def _bundles(
    session: AsyncSession, contract_ids: Sequence[int] | None, leader_id: str | None
) -> list[ContractBundle]:
    bundles = []
    for contract in await _chosen(session, contract_ids, leader_id):
        bundle = await load_bundle(session=session, contract_id=contract.id or 0)
        if bundle is not None:
            bundles.append(bundle)
    return bundles


async def export_contracts(
    *, session: AsyncSession, contract_ids: list[int] | None, leader_id: str | None
) -> list[dict[str, Any]]:
    """The chosen contracts (all when both filters are None) as import-format documents."""
    return [snapshot(bundle) for bundle in await _bundles(session, contract_ids, leader_id)]


_DATE_FIELDS = {
    "period": ("start", "end"),
    "development_activities": ("start", "due"),
    "milestones": ("due",),
}


def _with_dates(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with its ISO date strings as dates, so YAML writes them unquoted."""

    def dated(part: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
        return {
            name: date.fromisoformat(value) if name in fields and isinstance(value, str) else value
            for name, value in part.items()
        }

    result = dict(doc)
    for name, fields in _DATE_FIELDS.items():
        part = result.get(name)
        if isinstance(part, dict):
            result[name] = dated(part, fields)
        elif isinstance(part, list):
            result[name] = [dated(item, fields) for item in part]
    return result


def dump_documents(docs: list[dict[str, Any]], fmt: Literal["yaml", "json"]) -> str:
    """YAML: one document or a `---` stream; JSON: an object for one, a list for many."""
    if fmt == "yaml":
        return yaml_dump([_with_dates(doc) for doc in docs])
    data: Any = docs[0] if len(docs) == 1 else docs
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


async def export_csv(
    *, session: AsyncSession, contract_ids: list[int] | None, leader_id: str | None
) -> str:
    """One row per indicator measurement of the chosen contracts, oldest first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for bundle in await _bundles(session, contract_ids, leader_id):
        c = bundle.contract
        for indicator in bundle.indicators:
            for m in bundle.measurements.get(indicator.id or 0, []):
                row = [
                    c.id,
                    c.title,
                    c.leader_id,
                    indicator.key,
                    indicator.name,
                    indicator.unit,
                    number(indicator.baseline),
                    number(indicator.target),
                    indicator.direction,
                    m.measured_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                    number(m.value),
                    m.source,
                    m.recorded_by or "",
                    "yes" if m.confirmed else "",
                ]
                writer.writerow(safe_row(row))
    return out.getvalue()
