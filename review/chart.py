"""Geometry of the symptom chart: reports placed by recovery day and triage level.

Only numbers and labels are computed here; templates/_chart.html draws the
SVG, so every label goes through Jinja's escaping and the page needs no
script and no image request. Colours are SVG presentation attributes, which
the Content-Security-Policy (no inline styles) allows.

Every point lies wholly inside the plot area (day 0 is inset from the axis,
so its dot never covers the row labels), no two dots overlap, and each has a
text label (the symptom in words) placed where it covers no dot and, where
there is room, no other label:

- Dots of one level share a band. A dot goes on its day's position in the
  first of three lanes (the band's middle, just above, just below) that is
  free there; when all three are taken, it moves right in the lane where it
  moves least. Same-day reports therefore stack up and down, and crowded days
  push later dots a little to the right, never onto each other.
- A label goes right of its dot, else above, below, left or at a corner: the
  first of those inside the plot that touches no dot and no label placed
  before it. If none is free, the one that overlaps least, where covering
  another label counts far more than crossing a dot: labels are drawn over
  the dots with a white outline, so one crossing a dot is still read, two
  labels on each other are not. On a very crowded chart labels may touch;
  the hover title and the table under the chart still say it all.
"""
from __future__ import annotations

import math
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
WIDTH, HEIGHT = 760, 280
LEFT, RIGHT, TOP, BOTTOM = 110, 16, 10, 34
RADIUS = 6
GAP = 2                        # between two dots, at least
STEP = 2 * RADIUS + GAP        # centre to centre, at least
INSET = RADIUS + 6             # day 0 and the last day, from the plot's edges
LANES = (0, -STEP, STEP)       # offsets from a band's middle, in order of preference
LABEL_FONT = 10
LABEL_CHAR = 0.55 * LABEL_FONT  # a lower-case sans-serif letter, a bit wide (no font metrics)
LABEL_ASCENT, LABEL_DESCENT = 8.0, 2.5
LABEL_GAP = 3
LABEL_ROUNDS = 3

Box = Tuple[float, float, float, float]   # left, top, right, bottom


@dataclass(frozen=True)
class ChartReport:
    day: Optional[int]
    level: Optional[str]   # None: nothing to flag
    label: str             # the symptom in words, written next to the dot
    title: str             # shown on hover (the symptom, the day, when)


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    level: str
    colour: str
    title: str
    label: str
    label_x: float
    label_y: float          # the text's baseline
    label_anchor: str       # start, middle or end


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
    radius: int
    label_font: int
    rows: List[Row]
    ticks: List[Tick]
    points: List[Point]
    today_x: Optional[float]
    not_shown: int   # reports without a recovery day (or before day 0)


def _tick_step(max_day: int) -> int:
    if max_day <= 21:
        return 1
    return 7 if max_day <= 120 else 30


def label_box(x: float, y: float, anchor: str, text: str) -> Box:
    """The room a label takes (estimated: the SVG is drawn by the browser)."""
    width = len(text) * LABEL_CHAR
    left = {"start": x, "middle": x - width / 2, "end": x - width}[anchor]
    return (left, y - LABEL_ASCENT, left + width, y + LABEL_DESCENT)


def _overlap(a: Box, b: Box) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return width * height if width > 0 and height > 0 else 0.0


def _span(boxes: List[Box]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))


def _outside(box: Box, plot: Box) -> float:
    """How far a box sticks out of the plot (0 when inside)."""
    return (max(0.0, plot[0] - box[0]) + max(0.0, box[2] - plot[2])
            + max(0.0, plot[1] - box[1]) + max(0.0, box[3] - plot[3]))


def _place_dots(reports: List[Tuple[float, ChartReport]], y_mid: float,
                x_max: float) -> List[Tuple[float, float, ChartReport]]:
    """(x, y, report) for one band's reports, given (ideal x, report) in day order."""
    last = {lane: -math.inf for lane in LANES}
    placed = []
    for ideal, report in reports:
        best: Optional[Tuple[float, int]] = None
        for lane in LANES:
            x = max(ideal, last[lane] + STEP)
            if x <= x_max and (best is None or x < best[0]):
                best = (x, lane)
        if best is None:   # the band is full to the right edge: overlap is unavoidable
            lane = min(LANES, key=lambda name: last[name])
            best = (min(max(ideal, last[lane] + STEP), x_max), lane)
        x, lane = best
        last[lane] = x
        placed.append((round(x, 1), round(y_mid + lane, 1), report))
    return placed


def _candidates(x: float, y: float) -> List[Tuple[float, float, str]]:
    """Where a dot's label may go, in order of preference: (x, baseline, anchor)."""
    side = RADIUS + LABEL_GAP
    corner = RADIUS + 1            # clear of dots stacked straight above and below
    middle = y + LABEL_ASCENT / 2 - 0.5
    above, below = y - side - LABEL_DESCENT, y + side + LABEL_ASCENT
    return [(x + side, middle, "start"), (x, above, "middle"), (x, below, "middle"),
            (x - side, middle, "end"), (x + corner, above, "start"),
            (x + corner, below, "start"), (x - corner, above, "end"),
            (x - corner, below, "end")]


def _place_labels(dots: List[Tuple[float, float, ChartReport]],
                  plot: Box) -> List[Tuple[float, float, str]]:
    """(x, baseline y, anchor) of each dot's label, in the dots' order.

    Each label starts on the right; then, a few rounds over all labels, each
    moves to its least costly place given where the others are (stopping
    when nothing moves). Cost: sticking out of the plot, far above all;
    covering another label; covering a dot."""
    dot_boxes = [(x - RADIUS, y - RADIUS, x + RADIUS, y + RADIUS) for x, y, _ in dots]
    options = [[(c, label_box(*c, report.label)) for c in _candidates(x, y)]
               for x, y, report in dots]
    chosen = [0] * len(dots)
    # Only dots (and their labels) within reach of a label's places can be in its way.
    reach = [_span([box for _, box in places]) for places in options]
    near = [[j for j in range(len(dots)) if j != i and _overlap(reach[i], reach[j]) > 0]
            for i in range(len(dots))]
    near_dots = [[j for j in range(len(dots)) if _overlap(reach[i], dot_boxes[j]) > 0]
                 for i in range(len(dots))]

    def cost(index: int, box: Box) -> float:
        labels = sum(_overlap(box, options[j][chosen[j]][1]) for j in near[index])
        return (_outside(box, plot) * 10_000 + labels * 50
                + sum(_overlap(box, dot_boxes[j]) for j in near_dots[index]))

    order = sorted(range(len(dots)), key=lambda i: (dots[i][0], dots[i][1]))
    for _ in range(LABEL_ROUNDS):
        moved = False
        for index in order:
            costs = [cost(index, box) for _, box in options[index]]
            best = min(range(len(costs)), key=lambda k: (costs[k], k))
            if costs[best] < costs[chosen[index]]:
                chosen[index], moved = best, True
        if not moved:
            break
    return [(round(options[i][chosen[i]][0][0], 1), round(options[i][chosen[i]][0][1], 1),
             options[i][chosen[i]][0][2]) for i in range(len(dots))]


def symptom_chart(reports: Sequence[ChartReport], today: Optional[int] = None) -> Chart:
    """Days 0 to max(14, the last reported day) across, levels up the side."""
    placed = [r for r in reports if r.day is not None and r.day >= 0]
    max_day = max([MIN_DAYS] + [r.day for r in placed])  # type: ignore[misc]
    right = WIDTH - RIGHT
    bottom = HEIGHT - BOTTOM
    plot_h = bottom - TOP
    row_h = plot_h / len(ROWS)
    x_min, x_max = LEFT + INSET, right - INSET

    def x_of(day: float) -> float:
        return round(x_min + day / max_day * (x_max - x_min), 1)

    def y_of(level: str) -> float:
        return round(TOP + plot_h - (ROWS.index(level) + 0.5) * row_h, 1)

    bands: Dict[str, List[Tuple[float, ChartReport]]] = defaultdict(list)
    for report in sorted(placed, key=lambda r: r.day):  # type: ignore[arg-type,return-value]
        level = report.level if report.level in ROWS else "none"
        bands[level].append((x_of(report.day), report))  # type: ignore[arg-type]
    dots: List[Tuple[float, float, ChartReport]] = []
    levels: List[str] = []
    for level in ROWS:
        for dot in _place_dots(bands.get(level, []), y_of(level), x_max):
            dots.append(dot)
            levels.append(level)
    labels = _place_labels(dots, (LEFT, TOP, right, bottom))
    points = [Point(x=x, y=y, level=level, colour=COLOURS[level], title=report.title,
                    label=report.label, label_x=lx, label_y=ly, label_anchor=anchor)
              for (x, y, report), level, (lx, ly, anchor) in zip(dots, levels, labels)]
    step = _tick_step(max_day)
    ticks = [Tick(x=x_of(d), label=str(d)) for d in range(0, max_day + 1, step)]
    if max_day % step:
        ticks.append(Tick(x=x_of(max_day), label=str(max_day)))
    return Chart(
        width=WIDTH, height=HEIGHT, left=LEFT, right=right, top=TOP, bottom=bottom,
        max_day=max_day, radius=RADIUS, label_font=LABEL_FONT,
        rows=[Row(y=y_of(level), label=ROW_LABELS[level], colour=COLOURS[level])
              for level in ROWS],
        ticks=ticks, points=points,
        today_x=x_of(today) if today is not None and 0 <= today <= max_day else None,
        not_shown=len(reports) - len(placed))
