"""The model quality figures as inline SVG, drawn on the server.

Pure functions from numbers to SVG markup: the page needs no script (its
Content-Security-Policy forbids them) and no image request. Every text is
escaped here, so the markup can go into a template as it is. Colours are
presentation attributes, not style attributes, which the policy also forbids.
Each chart scales to its container (viewBox, width 100%) and is laid out to
stay readable on a phone; every cell, point and bar has a <title> with its
numbers for a pointer or a screen reader.

- confusion_heatmap_svg: the cross-validation's confusion matrix. A full
  matrix of forty intents is too fine for a phone: pass the part that
  matters (aftercare.quality.crossval.focus).
- f1_over_models_svg: per-intent F1 across the last models
  (aftercare.quality.history.f1_series).
- bar_chart_svg: one value per name, e.g. training examples of thin intents.
"""
from __future__ import annotations

import html
import math
from typing import Optional, Sequence

from aftercare.quality.history import F1Series

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
TEXT = "#1a1a1a"
MUTED = "#4d4d4d"       # 8.5:1 on white
GRID = "#d9d9d9"
EMPTY_CELL = "#f2f2f2"
RIGHT_COLOUR = "#08519c"   # the diagonal: read as the intent it is
WRONG_COLOUR = "#a50f15"   # elsewhere: read as another intent
# Line colours, each at least 3:1 against white (Okabe-Ito, darkened where needed).
PALETTE = ("#0072b2", "#c44e00", "#007a5a", "#a23f8a", "#000000", "#6a3d9a", "#8c510a", "#b2182b")
DASHES = ("", "7 4", "2 3", "9 3 2 3")
CHAR_WIDTH = 0.56   # of the font size: a rough average for the label columns
MAX_LABEL = 30


# --------------------------------------------------------------------------- helpers

def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _short(label: str, limit: int = MAX_LABEL) -> str:
    return label if len(label) <= limit else label[:limit - 1] + "\u2026"


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, content: str, size: int = 12, anchor: str = "start",
          fill: str = TEXT, weight: str = "normal") -> str:
    return (f'<text x="{_num(x)}" y="{_num(y)}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{fill}" font-weight="{weight}">{_esc(content)}</text>')


def _svg(width: float, height: float, title: str, body: Sequence[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_num(width)} {_num(height)}" '
            f'width="100%" preserveAspectRatio="xMinYMin meet" role="img" '
            f'font-family="{_esc(FONT)}"><title>{_esc(title)}</title>'
            + "".join(body) + "</svg>")


def _empty(title: str, message: str) -> str:
    return _svg(480, 70, title, [_text(8, 24, title, 15, weight="bold"),
                                 _text(8, 52, message, 13, fill=MUTED)])


def _rgb(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)


def mix(start: str, end: str, amount: float) -> str:
    """The colour `amount` (0 to 1) of the way from start to end."""
    amount = min(1.0, max(0.0, amount))
    a, b = _rgb(start), _rgb(end)
    return "#" + "".join(f"{round(x + (y - x) * amount):02x}" for x, y in zip(a, b))


def _luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in _rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two colours (1 to 21)."""
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def text_on(fill: str) -> str:
    """Black or white, whichever reads better on `fill` (at least 4.5:1)."""
    return "#000000" if contrast(fill, "#000000") >= contrast(fill, "#ffffff") else "#ffffff"


# --------------------------------------------------------------------------- confusion heat map

def _check_matrix(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> None:
    size = len(labels)
    if len(matrix) != size or any(len(row) != size for row in matrix):
        raise ValueError(f"the matrix must be {size} x {size}, one row and column per label")
    if any(count < 0 for row in matrix for count in row):
        raise ValueError("the matrix holds counts: none can be negative")


def cell_colour(count: int, total: int, diagonal: bool) -> str:
    """Darker for a larger share of the intent's examples; errors on a square-root
    scale, so that a few percent still shows."""
    if count == 0 or total == 0:
        return EMPTY_CELL
    share = count / total
    if diagonal:
        return mix("#ffffff", RIGHT_COLOUR, 0.15 + 0.85 * share)
    return mix("#ffffff", WRONG_COLOUR, 0.15 + 0.85 * math.sqrt(share))


def confusion_heatmap_svg(labels: Sequence[str], matrix: Sequence[Sequence[int]],
                          row_totals: Optional[Sequence[int]] = None,
                          title: str = "How the training examples were read (cross-validation)"
                          ) -> str:
    """Rows: the intent an example has; columns (numbered as the rows): the
    intent it was read as. `row_totals` are each intent's examples when the
    matrix is a part of a larger one (default: the row sums)."""
    _check_matrix(labels, matrix)
    if not labels:
        return _empty(title, "No cross-validation recorded yet.")
    totals = list(row_totals) if row_totals is not None else [sum(row) for row in matrix]
    if len(totals) != len(labels):
        raise ValueError("row_totals must have one total per label")
    size, cell, font = len(labels), 30, 13
    names = [f"{i}. {_short(label)}" for i, label in enumerate(labels, start=1)]
    left = 12 + CHAR_WIDTH * font * max(len(n) for n in names)
    top = 78
    width = max(left + size * cell + 12, 360)
    height = top + size * cell + 58
    body = [_text(8, 20, title, 15, weight="bold"),
            _text(left, 42, "read as (numbered as the rows)", 12, fill=MUTED),
            _text(8, 42, "intent", 12, fill=MUTED)]
    for j in range(size):
        body.append(_text(left + j * cell + cell / 2, top - 10, str(j + 1), 12, "middle", MUTED))
    for i, (label, name) in enumerate(zip(labels, names)):
        y = top + i * cell
        body.append(f"<g class=\"row-label\"><title>{_esc(label)}: {totals[i]} examples</title>"
                    + _text(left - 8, y + cell / 2 + 4.5, name, font, "end") + "</g>")
        for j, count in enumerate(matrix[i]):
            count = int(count)
            fill = cell_colour(count, totals[i], i == j)
            share = f" ({100 * count / totals[i]:.0f}%)" if totals[i] else ""
            tip = (f"{label}: {count} of {totals[i]} read right{share}" if i == j else
                   f"{label} read as {labels[j]}: {count} of {totals[i]}{share}")
            number = (_text(left + j * cell + cell / 2, y + cell / 2 + 4, str(count), 11,
                            "middle", text_on(fill)) if count else "")
            body.append(f'<g class="cell" data-row="{i}" data-col="{j}" data-count="{count}">'
                        f"<title>{_esc(tip)}</title>"
                        f'<rect x="{_num(left + j * cell)}" y="{_num(y)}" width="{cell}" '
                        f'height="{cell}" fill="{fill}" stroke="#ffffff" stroke-width="1"/>'
                        f"{number}</g>")
    legend_y = top + size * cell + 24
    body += [f'<rect x="8" y="{legend_y - 11}" width="14" height="14" fill="{RIGHT_COLOUR}"/>',
             _text(28, legend_y, "read right", 12, fill=MUTED),
             f'<rect x="120" y="{legend_y - 11}" width="14" height="14" fill="{WRONG_COLOUR}"/>',
             _text(140, legend_y, "read as another intent", 12, fill=MUTED),
             _text(8, legend_y + 22, "Darker: a larger share of the intent's examples.", 12,
                   fill=MUTED)]
    return _svg(width, height, title, body)


# --------------------------------------------------------------------------- F1 over models

def f1_over_models_svg(series: F1Series, title: str = "F1 per intent, model by model") -> str:
    """One line per intent across the models (oldest left); a gap where an
    intent was not measured. The legend lists each line with its newest F1."""
    models, lines = list(series.models), dict(series.lines)
    for name, values in lines.items():
        if len(values) != len(models):
            raise ValueError(f"{name}: {len(values)} values for {len(models)} models")
    if not models or not lines:
        return _empty(title, "No models recorded yet.")
    width, left, right, top, plot_height = 480, 46, 16, 40, 200
    bottom = top + plot_height
    step = (width - left - right) / max(len(models) - 1, 1)

    def x(index: int) -> float:
        return left + (index * step if len(models) > 1 else (width - left - right) / 2)

    def y(value: float) -> float:
        return bottom - value * plot_height

    body = [_text(8, 22, title, 15, weight="bold")]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{_num(y(tick))}" '
                    f'y2="{_num(y(tick))}" stroke="{GRID}" stroke-width="1"/>')
        body.append(_text(left - 6, y(tick) + 4, f"{tick:.2f}", 12, "end", MUTED))
    every = max(1, math.ceil(len(models) / 4))  # about four labels under the axis
    last = len(models) - 1
    labelled = {i for i in range(0, last, every) if last - i >= every} | {last}
    for index, model in enumerate(models):
        if index in labelled:
            # the end labels stay inside the chart
            anchor = ("middle" if last == 0 or 0 < index < last
                      else "start" if index == 0 else "end")
            body.append(f"<g class=\"model\"><title>{_esc(model)}</title>"
                        + _text(x(index), bottom + 20, _short(model, 14), 12, anchor, MUTED)
                        + "</g>")
    body.append(_text(left, bottom + 40, "models, oldest to newest", 12, fill=MUTED))
    legend_top = bottom + 68
    for number, (name, values) in enumerate(lines.items()):
        colour = PALETTE[number % len(PALETTE)]
        dash = DASHES[(number // len(PALETTE)) % len(DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts, run = [], []
        for index, value in enumerate(list(values) + [None]):
            if value is None:
                if len(run) > 1:
                    parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2.5"'
                                 f'{dash_attr} points="{" ".join(run)}"/>')
                run = []
            else:
                run.append(f"{_num(x(index))},{_num(y(float(value)))}")
        for index, value in enumerate(values):
            if value is not None:
                parts.append(f'<circle cx="{_num(x(index))}" cy="{_num(y(float(value)))}" r="4" '
                             f'fill="{colour}"><title>{_esc(name)}, model {_esc(models[index])}: '
                             f"F1 {float(value):.2f}</title></circle>")
        newest = values[-1]
        row_y = legend_top + number * 24
        parts.append(f'<line x1="8" x2="38" y1="{row_y - 4}" y2="{row_y - 4}" stroke="{colour}" '
                     f'stroke-width="2.5"{dash_attr}/>')
        parts.append(_text(46, row_y, f"{_short(name)}  "
                           + ("-" if newest is None else f"{float(newest):.2f}"), 14))
        body.append(f'<g class="series" data-name="{_esc(name)}">' + "".join(parts) + "</g>")
    height = legend_top + len(lines) * 24 - 8
    return _svg(width, height, title, body)


# --------------------------------------------------------------------------- bars

def bar_chart_svg(items: Sequence[tuple[str, float]], title: str,
                  maximum: Optional[float] = None, digits: int = 2) -> str:
    """Horizontal bars, one per (name, value), in the order given."""
    if not items:
        return _empty(title, "Nothing to show.")
    if any(value < 0 for _, value in items):
        raise ValueError("bar values cannot be negative")
    top_value = maximum if maximum is not None else max(value for _, value in items) or 1.0
    font, row = 12, 24
    left = 12 + CHAR_WIDTH * font * max(len(_short(name)) for name, _ in items)
    bar_room = 260
    width, top = left + bar_room + 60, 36
    body = [_text(8, 20, title, 15, weight="bold")]
    for index, (name, value) in enumerate(items):
        y = top + index * row
        length = bar_room * min(value / top_value, 1.0) if top_value else 0.0
        shown = f"{value:.{digits}f}"
        body.append(f'<g class="bar" data-value="{_esc(shown)}">'
                    f"<title>{_esc(name)}: {shown}</title>"
                    + _text(left - 8, y + 15, _short(name), font, "end")
                    + f'<rect x="{_num(left)}" y="{y + 4}" width="{_num(length)}" height="15" '
                      f'fill="{PALETTE[0]}"/>'
                    + _text(left + length + 6, y + 16, shown, 11, fill=MUTED) + "</g>")
    return _svg(width, top + len(items) * row + 8, title, body)
