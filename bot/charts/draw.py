"""Drawing charts to PNG with matplotlib's Agg canvas: pure, no pyplot, safe off the loop.

Each call builds its own `Figure` on its own canvas (pyplot's global state is never used), so
drawings can run in worker threads. Text from people (an indicator's name, its unit) is drawn
with mathtext off: a `$` is a dollar sign, never the start of a formula.
"""

from __future__ import annotations

import io
from datetime import date

import matplotlib

matplotlib.use("Agg")

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure

from bot.charts.model import CONFIDENCE_SCALE, Chart, ConfidenceChart, IndicatorChart
from bot.core.progress import format_number
from storage.models import MilestoneStatus

WIDTH_PX = 600
INDICATOR_HEIGHT_PX = 240
CONFIDENCE_HEIGHT_PX = 120
DPI = 100
VALUE = "#1565c0"
GUIDE = "#757575"
TARGET = "#2e7d32"
MARK = {MilestoneStatus.met: "#2e7d32", MilestoneStatus.missed: "#c62828"}
PENDING = "#f9a825"
TITLE_CHARS = 70


def draw(chart: Chart) -> bytes:
    """The chart as PNG bytes, `WIDTH_PX` wide."""
    if isinstance(chart, IndicatorChart):
        return _draw_indicator(chart)
    return _draw_confidence(chart)


def _figure(height_px: int) -> Figure:
    figure = Figure(figsize=(WIDTH_PX / DPI, height_px / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    out = io.BytesIO()
    # No bbox_inches="tight": the image keeps its size, whatever its labels.
    figure.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


def _x(day: date) -> float:
    """A day where matplotlib's date axis puts it."""
    return float(date2num(day))


def _clip(text: str, limit: int = TITLE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _draw_indicator(chart: IndicatorChart) -> bytes:
    figure = _figure(INDICATOR_HEIGHT_PX)
    ax = figure.add_axes((0.08, 0.14, 0.7, 0.72))
    unit = f" {chart.unit}" if chart.unit else ""
    ax.set_title(
        _clip(f"{chart.key} · {chart.name}{' (' + chart.unit + ')' if chart.unit else ''}"),
        loc="left",
        fontsize=10,
        parse_math=False,
    )
    start, end = chart.period_start, chart.period_end
    ax.plot(
        [_x(start), _x(end)],
        [chart.baseline, chart.target],
        linestyle="--",
        color=GUIDE,
        linewidth=1,
        label="expected pace",
    )
    ax.axhline(chart.baseline, color=GUIDE, linewidth=0.8, alpha=0.6)
    ax.axhline(chart.target, color=TARGET, linewidth=0.8, alpha=0.8)
    _right_label(ax, chart.baseline, f"baseline {format_number(chart.baseline)}{unit}", GUIDE)
    _right_label(ax, chart.target, f"target {format_number(chart.target)}{unit}", TARGET)
    for mark in chart.milestones:
        colour = MARK.get(MilestoneStatus(mark.status), PENDING) if mark.status in MARK else PENDING
        if mark.threshold is not None:
            ax.plot([_x(mark.due)], [mark.threshold], marker="D", markersize=6, color=colour)
        else:
            ax.axvline(_x(mark.due), color=colour, linewidth=0.8, linestyle=":")
        y = mark.threshold if mark.threshold is not None else chart.target
        ax.annotate(
            mark.key,
            (_x(mark.due), y),
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
            fontsize=7,
            color=colour,
            parse_math=False,
        )
    if chart.values:
        days = [_x(d) for d, _ in chart.values]
        values = [v for _, v in chart.values]
        ax.plot(days, values, color=VALUE, linewidth=1.8, marker="o", markersize=3.5)
        latest = values[-1]
        ax.annotate(
            format_number(latest),
            (days[-1], latest),
            textcoords="offset points",
            xytext=(4, -10),
            fontsize=8,
            color=VALUE,
            parse_math=False,
        )
    else:
        ax.text(
            0.5,
            0.5,
            "no value yet",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color=GUIDE,
            fontsize=9,
        )
    _period_axis(ax, start, end)
    return _png(figure)


def _right_label(ax: Axes, y: float, text: str, colour: str) -> None:
    ax.annotate(
        text,
        (1.0, y),
        xycoords=("axes fraction", "data"),
        textcoords="offset points",
        xytext=(4, 0),
        va="center",
        fontsize=8,
        color=colour,
        parse_math=False,
        annotation_clip=False,
    )


def _period_axis(ax: Axes, start: date, end: date) -> None:
    locator = AutoDateLocator(maxticks=7)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, show_offset=False))
    if end > start:
        ax.set_xlim(_x(start), _x(end))
    ax.tick_params(labelsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _draw_confidence(chart: ConfidenceChart) -> bytes:
    figure = _figure(CONFIDENCE_HEIGHT_PX)
    ax = figure.add_axes((0.08, 0.22, 0.7, 0.56))
    ax.set_title("Confidence at each check-in (1–5)", loc="left", fontsize=9, parse_math=False)
    days = [_x(d) for d, _ in chart.ratings]
    ratings = [r for _, r in chart.ratings]
    ax.plot(days, ratings, color=VALUE, linewidth=1.6, marker="o", markersize=3)
    ax.set_ylim(0.5, CONFIDENCE_SCALE + 0.5)
    ax.set_yticks([1, 3, 5])
    _right_label(ax, ratings[-1], f"latest {ratings[-1]}/5", VALUE)
    _period_axis(ax, chart.period_start, chart.period_end)
    return _png(figure)
