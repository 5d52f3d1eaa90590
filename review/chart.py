"""Geometry of the symptom chart: reports placed by recovery day and triage level.

Only numbers and labels are computed here; templates/_chart.html draws the
SVG, so every label goes through Jinja's escaping and the page needs no
script and no image request. Colours are SVG presentation attributes, which
the Content-Security-Policy (no inline styles) allows.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

# Bottom to top: the higher a point, the more it needed the clinic.
ROWS = ("none", "routine", "urgent", "emergency")
ROW_LABELS = {"none": "nothing to flag", "routine": "routine", "urgent": "urgent",
              "emergency": "emergency"}
COLOURS = {"none": "#2e7d4f", "routine": "#b08800", "urgent": "#d35400",
           "emergency": "#b71c1c"}
MIN_DAYS = 14
WIDTH, HEIGHT = 640, 190
LEFT, RIGHT, TOP, BOTTOM = 110, 16, 10, 34
SPREAD = 7   # pixels between points of the same day and level


@dataclass(frozen=True)
class ChartReport:
    day: Optional[int]
    level: Optional[str]   # None: nothing to flag
    title: str             # shown on hover (the symptom, the day, when)


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    level: str
    colour: str
    title: str


@dataclass(frozen=True)
class Row:
    y: float
    label: str
    colour: str


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    right: float
    top: int
    bottom: float
    max_day: int
    rows: List[Row]
    ticks: List[Tick]
    points: List[Point]
    today_x: Optional[float]
    not_shown: int   # reports without a recovery day (or before day 0)


def _tick_step(max_day: int) -> int:
    if max_day <= 21:
        return 1
    return 7 if max_day <= 120 else 30


def symptom_chart(reports: Sequence[ChartReport], today: Optional[int] = None) -> Chart:
    """Days 0 to max(14, the last reported day) across, levels up the side."""
    placed = [r for r in reports if r.day is not None and r.day >= 0]
    max_day = max([MIN_DAYS] + [r.day for r in placed])  # type: ignore[misc]
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    row_h = plot_h / len(ROWS)

    def x_of(day: float) -> float:
        return round(LEFT + day / max_day * plot_w, 1)

    def y_of(level: str) -> float:
        return round(TOP + plot_h - (ROWS.index(level) + 0.5) * row_h, 1)

    groups: Dict[Tuple[int, str], List[ChartReport]] = defaultdict(list)
    for report in placed:
        level = report.level if report.level in ROWS else "none"
        groups[(report.day, level)].append(report)  # type: ignore[index]
    points = []
    for (day, level), members in sorted(groups.items()):
        for i, report in enumerate(members):
            offset = (i - (len(members) - 1) / 2) * SPREAD
            points.append(Point(x=round(x_of(day) + offset, 1), y=y_of(level), level=level,
                                colour=COLOURS[level], title=report.title))
    step = _tick_step(max_day)
    ticks = [Tick(x=x_of(d), label=str(d)) for d in range(0, max_day + 1, step)]
    if max_day % step:
        ticks.append(Tick(x=x_of(max_day), label=str(max_day)))
    return Chart(
        width=WIDTH, height=HEIGHT, left=LEFT, right=WIDTH - RIGHT, top=TOP,
        bottom=TOP + plot_h, max_day=max_day,
        rows=[Row(y=y_of(level), label=ROW_LABELS[level], colour=COLOURS[level])
              for level in ROWS],
        ticks=ticks, points=points,
        today_x=x_of(today) if today is not None and 0 <= today <= max_day else None,
        not_shown=len(reports) - len(placed))
