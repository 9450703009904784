"""Charts drawn to PNG: they decode, have the expected size, and hash by their data."""

from __future__ import annotations

import io
import threading
from dataclasses import replace
from datetime import date

from PIL import Image

from bot.charts import draw as drawing
from bot.charts.blocks import chart_blocks
from bot.charts.model import (
    ConfidenceChart,
    IndicatorChart,
    MilestoneMark,
    ShownChart,
    data_hash,
)

INDICATOR = IndicatorChart(
    contract_id=1,
    key="I1",
    name="Cost per seat in $ (was $x^2$ {bad} \\frac)",
    unit="$",
    baseline=45,
    target=30,
    period_start=date(2027, 1, 1),
    period_end=date(2027, 12, 31),
    values=((date(2027, 2, 1), 44.0), (date(2027, 3, 1), 40.0)),
    milestones=(
        MilestoneMark("M1", date(2027, 6, 30), 38.0, "pending"),
        MilestoneMark("M2", date(2027, 9, 30), None, "missed"),
    ),
)
CONFIDENCE = ConfidenceChart(
    contract_id=1,
    period_start=date(2027, 1, 1),
    period_end=date(2027, 12, 31),
    ratings=((date(2027, 2, 1), 3), (date(2027, 3, 1), 4)),
)


def decoded(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def test_an_indicator_chart_is_a_png_of_the_expected_size() -> None:
    image = decoded(drawing.draw(INDICATOR))
    assert image.format == "PNG"
    assert image.size == (drawing.WIDTH_PX, drawing.INDICATOR_HEIGHT_PX)


def test_a_confidence_sparkline_is_a_png_of_the_expected_size() -> None:
    image = decoded(drawing.draw(CONFIDENCE))
    assert image.size == (drawing.WIDTH_PX, drawing.CONFIDENCE_HEIGHT_PX)


def test_an_indicator_without_values_or_milestones_still_draws() -> None:
    empty = replace(INDICATOR, values=(), milestones=(), unit="")
    assert decoded(drawing.draw(empty)).size == (drawing.WIDTH_PX, drawing.INDICATOR_HEIGHT_PX)


def test_a_period_of_one_day_draws() -> None:
    one_day = replace(INDICATOR, period_end=INDICATOR.period_start)
    assert decoded(drawing.draw(one_day)).format == "PNG"


def test_the_hash_is_of_the_data() -> None:
    assert data_hash(INDICATOR) == data_hash(replace(INDICATOR))
    more = replace(INDICATOR, values=(*INDICATOR.values, (date(2027, 4, 1), 38.0)))
    assert data_hash(more) != data_hash(INDICATOR)
    assert data_hash(replace(INDICATOR, target=31)) != data_hash(INDICATOR)
    assert data_hash(replace(CONFIDENCE, ratings=CONFIDENCE.ratings[:1])) != data_hash(CONFIDENCE)


def test_the_hash_of_the_same_data_stays_the_same_across_releases() -> None:
    """The uploaded files are kept by this hash: a release that changed it for the same data
    (and drawing version) would upload every chart again."""
    assert (
        data_hash(INDICATOR) == "ee9521d14dc0097aa539c1ff19fc19d79353cf8b3ee434179ab277567acb9ea5"
    )
    assert (
        data_hash(CONFIDENCE) == "dcda984b9ea48c0d05a1797aa77ccb5b1433c5016e977cec07a8c063c67d6dd1"
    )


def test_alt_text_and_title_fit_an_image_block() -> None:
    long = replace(INDICATOR, name="x" * 5000)
    (block,) = chart_blocks([ShownChart(1, "I1", "F0001", long.title, long.alt_text)])
    shown = block.to_dict()
    assert shown["slack_file"] == {"id": "F0001"}
    assert len(shown["alt_text"]) <= 2000 and len(shown["title"]["text"]) <= 2000
    assert shown["title"]["type"] == "plain_text"


def test_drawing_in_threads_at_once_gives_whole_pngs() -> None:
    """Each drawing has its own figure and canvas: threads never share pyplot's state."""
    results: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: results.append(drawing.draw(INDICATOR))) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3
    assert all(decoded(png).size == (600, 240) for png in results)


def test_charts_of_a_bundle_follow_its_data() -> None:
    from datetime import UTC, datetime

    from bot.charts.model import charts_of
    from storage.models import CheckIn, Contract, Measurement, Milestone, SuccessIndicator
    from storage.queries.contracts import ContractBundle

    contract = Contract(
        id=7,
        title="c",
        leader_id="U1",
        sponsor_id="U2",
        period_start=date(2027, 1, 1),
        period_end=date(2027, 12, 31),
    )
    indicator = SuccessIndicator(
        id=3,
        contract_id=7,
        key="I1",
        name="Score",
        baseline=1,
        target=5,
        direction="increase",
        cadence="weekly",
    )
    when = datetime(2027, 2, 1, tzinfo=UTC)
    bundle = ContractBundle(
        contract=contract,
        indicators=[indicator],
        milestones=[
            Milestone(
                contract_id=7,
                key="M1",
                title="t",
                due=date(2027, 6, 1),
                indicator_key="I1",
                threshold=3,
            ),
            Milestone(contract_id=7, key="M2", title="t", due=date(2027, 7, 1), indicator_key="I9"),
        ],
        measurements={3: [Measurement(indicator_id=3, value=2, measured_at=when)]},
        checkins=[
            CheckIn(contract_id=7, period_key="2027-W06", confidence=4, created_at=when),
            CheckIn(contract_id=7, period_key="2027-W07", status="skipped", created_at=when),
        ],
    )
    chart, confidence = charts_of(bundle)
    assert isinstance(chart, IndicatorChart) and isinstance(confidence, ConfidenceChart)
    assert chart.values == ((date(2027, 2, 1), 2.0),)
    assert [m.key for m in chart.milestones] == ["M1"]  # only this indicator's milestones
    assert confidence.ratings == ((date(2027, 2, 1), 4),)
    assert charts_of(bundle, limit=0) == [confidence]
    assert decoded(drawing.draw(confidence)).size == (600, 120)
