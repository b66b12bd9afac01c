"""Shared pieces of the report figures: figure and PNG writing, axes
formatting, min/max downsampling, asset colours and styles, legends, event
times.  Every figure module draws on its own :class:`matplotlib.figure.Figure`
(no pyplot) and writes it with :func:`_save` (looked up on this module at
call time, so a test can wrap it).  Figures are laid out by
:class:`FittedLayout`: margins in inches from the tick labels, axis labels,
titles, outside legends and colorbars actually drawn (see the "layout"
section), at a fraction of the cost of matplotlib's constrained layout.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import colormaps  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.layout_engine import LayoutEngine  # noqa: E402
from matplotlib.ticker import PercentFormatter  # noqa: E402

DPI = 110
#: most points drawn per series: a min and a max per bucket, plus the first and last row
MAX_POINTS = 4000
#: above this many assets the figures summarise rather than draw every asset
MANY_ASSETS = 20
#: attribution bars: every asset up to this many, else the largest |PnL| ones plus "others"
MAX_BARS = 30
_BEST_WORST = 3  # sleeves named at each end of the equity figure at many assets
_LABELLED = 5  # frontier points labelled at each end (return / volatility) at many assets
_MAX_LABELS = 40  # asset labels per heatmap axis
_LOG_RATIO = 10.0  # equity curves spanning more than this factor get a log scale
#: a halted period is shaded at least this share of the time axis wide
_MIN_SPAN = 0.006
_ROW_BLOCK = 1 << 23  # elements per block when scanning an assets x bars array
_PORTFOLIO_COLOR = "#111111"
_POS, _NEG = "#2e8b57", "#c0392b"
# breaker trips, resumes, rebalances and halted periods: the same look in every figure
_TRIP, _RESUME, _REBAL, _HALT = "#b2182b", "#1a9850", "#1f77b4", "#fdae61"


# ------------------------------------------------------------------ helpers

def _figure(width: float, height: float, layout: str = "fitted") -> Figure:
    """A white ``width`` x ``height`` inch figure at :data:`DPI`.  ``layout``:
    ``"fitted"`` (default) sets its margins in inches from the texts actually
    drawn (:class:`FittedLayout`: 10-90 ms a report figure); ``"constrained"``
    is matplotlib's constrained layout (the extent of every artist, twice:
    40-180 ms), for a figure :class:`FittedLayout` cannot describe."""
    engine = FittedLayout() if layout == "fitted" else layout
    return Figure(figsize=(width, height), dpi=DPI, layout=engine, facecolor="white")


def _canvas(fig: Figure):
    """The figure's Agg canvas (made once: its renderer, and so matplotlib's
    text-size cache, is shared by a layout pass and the final draw)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)


def _save(fig: Figure, path) -> Path:
    """Render with Agg and write an RGB PNG (zlib level 1: about half the
    encoding time of ``savefig``'s RGBA at level 6, files ~10 % larger)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas = _canvas(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    Image.fromarray(np.ascontiguousarray(rgba[..., :3])).save(path, format="PNG",
                                                               compress_level=1)
    return path  # no fig.clear(): it rebuilds empty axes (~40 ms) for a figure about to go


def _title(ax, text: str, **kw) -> None:
    """``ax.set_title`` at a fixed height: matplotlib's automatic title
    placement measures the whole y axis again at every layout pass and draw."""
    ax.set_title(text, y=1.0, **kw)


def _no_data(ax, message: str = "no data") -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes,
            fontsize=12, color="#777777")
    ax.set_xticks([])
    ax.set_yticks([])


def _date_axis(ax) -> None:
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _pct_axis(axis, decimals: int | None = None) -> None:
    axis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=decimals))


def _money(v: float, _pos=None) -> str:
    if not math.isfinite(v):
        return "n/a"
    a = abs(v)
    if a >= 1e9:
        s = f"{v / 1e9:.2f}B"
    elif a >= 1e6:
        s = f"{v / 1e6:.2f}M"
    elif a >= 1e4:
        s = f"{v / 1e3:.1f}k"
    elif a >= 1e3:
        s = f"{v / 1e3:.2f}k"
    else:
        s = f"{v:.0f}"
    return s


def _money_tick(v: float, _pos=None) -> str:
    """Axis tick version of :func:`_money` (no trailing zeros: 2k, 2.5k, 1.25M)."""
    s = _money(v)
    if "." in s:
        num, unit = (s[:-1], s[-1]) if s[-1].isalpha() else (s, "")
        s = num.rstrip("0").rstrip(".") + unit
    return s


def _ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def _to_utc_index(index) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(index, utc=True))


def _to_times(values) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(pd.Series(values), utc=True))


def _dates(times) -> np.ndarray:
    """Timestamps as matplotlib date numbers (UTC), vectorised: matplotlib's
    own conversion of tz-aware times goes through Python objects one by one."""
    idx = _to_utc_index(times)
    return mdates.date2num(idx.tz_convert(None).to_numpy(dtype="datetime64[ns]"))


# ------------------------------------------------------------------ layout
#
# Every length here is in inches.  An axes' "room" is how far its own texts reach
# beyond its box on each side: tick labels (with their pad and tick length), the
# axis labels, offset texts ("1e6", the concise date formatter's year) and titles
# above it, and tick labels or titles that stick out past its ends along an edge
# (a centred date label at the first tick, a title wider than the axes).
# FittedLayout adds up the rooms, the figure legends placed "outside", the
# suptitle and the colorbars of _colorbar into margins and gaps.

#: space between the outermost text and the figure's edge (inches)
EDGE_PAD = 0.06
#: space between an axes' texts and the next thing: another axes' texts, an
#: outside legend, a colorbar, the suptitle (inches)
GAP = 0.1
#: thickness of a colorbar made by :func:`_colorbar` (inches)
COLORBAR_WIDTH = 0.2
_SIDES = ("left", "right", "bottom", "top")
#: a line's least ascent and descent and, between lines, the added gap, in font sizes (the
#: default font's, DejaVu Sans: what matplotlib gives each line of it)
_ASCENT, _DESCENT, _LINE_GAP = 0.76, 0.24, 0.2

try:  # the cache Text.draw fills: a size measured here is not measured again there
    from matplotlib.text import _get_text_metrics_with_cache as _metrics  # noqa: E402
except ImportError:  # pragma: no cover - a matplotlib without it
    def _metrics(renderer, text, prop, ismath, dpi):
        return renderer.get_text_width_height_descent(text, prop, ismath)


def _text_box(text, renderer, dpi: float) -> tuple[float, float, float, float] | None:
    """``(x0, y0, x1, y1)``: where the Text artist ``text`` reaches around its
    anchor point, in inches (y up), from the glyph metrics of its lines (the
    cached ones its draw uses: no layout pass), with its rotation, alignment
    and rotation mode; None when it draws nothing.  Each line is at least
    :data:`_ASCENT` above and :data:`_DESCENT` below its baseline (font
    sizes), about what matplotlib gives a line of the default font."""
    s = text.get_text()
    if not s or not text.get_visible():
        return None
    prop = text.get_fontproperties()
    em = prop.get_size_in_points() * dpi / 72.0
    lines = s.split("\n")
    gap = _LINE_GAP * em / 2 if len(lines) > 1 else 0.0
    w = h = first_ascent = descent = 0.0
    for i, line in enumerate(lines):
        clean, ismath = text._preprocess_math(line)
        lw, lh, ld = _metrics(renderer, clean, prop, ismath, dpi) if clean else (0.0, 0.0, 0.0)
        a, d = max(lh - ld, _ASCENT * em) + gap, max(ld, _DESCENT * em) + gap
        w, h, descent = max(w, lw), h + a + d, d
        if i == 0:
            first_ascent = a
    w, h, ascent, descent = w / dpi, h / dpi, first_ascent / dpi, descent / dpi
    ha, va = text.get_horizontalalignment(), text.get_verticalalignment()
    theta = math.radians(text.get_rotation())
    cos, sin = math.cos(theta), math.sin(theta)
    x_at = {"left": 0.0, "center": 0.5, "right": 1.0}[ha]  # share of the width left of the anchor

    def y_below(height):  # how far the box reaches below the anchor, by va
        return {"bottom": 0.0, "top": height, "center": height / 2, "baseline": descent,
                "center_baseline": height - ascent / 2}[va]

    if text.get_rotation_mode() == "anchor" or not theta:  # aligned upright, turned about the anchor
        x0, y0 = -x_at * w, -y_below(h)
        xs = [x * cos - y * sin for x in (x0, x0 + w) for y in (y0, y0 + h)]
        ys = [x * sin + y * cos for x in (x0, x0 + w) for y in (y0, y0 + h)]
        return min(xs), min(ys), max(xs), max(ys)
    rw, rh = abs(w * cos) + abs(h * sin), abs(w * sin) + abs(h * cos)  # turned, then aligned
    return -x_at * rw, -y_below(rh), (1 - x_at) * rw, rh - y_below(rh)


def _text_sizes(fig: Figure, texts: list[str], fontsize: float) -> np.ndarray:
    """``(width, height)`` in points of each of ``texts`` drawn in the default
    font at ``fontsize`` (one or more lines; see :func:`_text_box`)."""
    from matplotlib.text import Text

    renderer = _canvas(fig).get_renderer()
    out = np.zeros((len(texts), 2))
    for i, s in enumerate(texts):
        box = _text_box(Text(text=s, fontsize=fontsize), renderer, fig.dpi)
        if box is not None:
            out[i] = (72.0 * (box[2] - box[0]), 72.0 * (box[3] - box[1]))
    return out


def _axis_room(axis, renderer, dpi: float, size: tuple[float, float]) -> dict[str, float]:
    """How far ``axis``'s tick labels, label and offset text reach beyond an
    axes of ``size`` (width, height) inches on each side (see :func:`_axes_room`)."""
    ax = axis.axes
    is_x = axis.axis_name == "x"
    length = size[0] if is_x else size[1]
    start, end = ("left", "right") if is_x else ("bottom", "top")  # the axis' ends
    room = dict.fromkeys(_SIDES, 0.0)
    ticks = axis._update_ticks()  # the ticks and labels the draw shows (locator + formatter)
    if ticks:
        locs = np.array([t.get_loc() for t in ticks], dtype=float)
        zero = np.zeros(len(locs))
        pts = np.column_stack([locs, zero] if is_x else [zero, locs])
        frac = (ax.transScale + ax.transLimits).transform(pts)[:, 0 if is_x else 1]
        for tick, f in zip(ticks, frac):
            pad = (tick.get_pad() + tick.get_tick_padding()) / 72.0
            for label, side in ((tick.label1, "bottom" if is_x else "left"),
                                (tick.label2, "top" if is_x else "right")):
                box = _text_box(label, renderer, dpi)
                if box is None:
                    continue
                x0, y0, x1, y1 = box
                across = {"bottom": -y0, "top": y1, "left": -x0, "right": x1}[side]
                a0, a1 = (x0, x1) if is_x else (y0, y1)
                room[side] = max(room[side], pad + across)
                room[start] = max(room[start], -(f * length + a0))
                room[end] = max(room[end], f * length + a1 - length)
    ticks_reach = dict(room)  # the tick labels' reach, that the axis label and offset text go beyond
    offset = axis.major.formatter.get_offset() if ticks else ""
    if offset:
        axis.offsetText.set_text(offset)  # as the draw sets it
        box = _text_box(axis.offsetText, renderer, dpi)
        if box is not None:  # Axis.OFFSETTEXTPAD (3 points) off the tick labels or the axes
            reach = 3 / 72.0 + box[3] - box[1]
            if is_x:  # beyond the tick labels, beside the axis label
                side = "top" if axis.get_ticks_position() == "top" else "bottom"
                room[side] = max(room[side], ticks_reach[side] + reach)
            else:  # above the axes' top corner
                room["top"] = max(room["top"], reach)
    box = _text_box(axis.label, renderer, dpi)
    if box is not None:  # labelpad points beyond the tick labels on its side
        side = axis.get_label_position()
        across = (box[3] - box[1]) if is_x else (box[2] - box[0])
        along = (box[2] - box[0]) if is_x else (box[3] - box[1])
        room[side] = max(room[side], ticks_reach[side] + axis.labelpad / 72.0 + across)
        room[start] = max(room[start], (along - length) / 2)
        room[end] = max(room[end], (along - length) / 2)
    return room


def _axes_room(ax, renderer, dpi: float) -> dict[str, float]:
    """``{"left", "right", "bottom", "top"}``: how far ``ax``'s own texts reach
    beyond its box, in inches: tick labels (pad and tick length included),
    axis labels (with their labelpad), offset texts, the titles (at the
    axes' top, ``axes.titlepad`` above), and any of them sticking out past
    the axes' ends.  Measured at the axes' current size, from the tick
    labels the draw will show (their locator and formatter run here once)."""
    pos = ax.get_position(original=True)
    fw, fh = ax.get_figure(root=True).get_size_inches()
    size = (pos.width * fw, pos.height * fh)
    room = dict.fromkeys(_SIDES, 0.0)
    if not ax.axison:
        return room
    for axis in (ax.xaxis, ax.yaxis):
        if axis.get_visible():
            for side, v in _axis_room(axis, renderer, dpi, size).items():
                room[side] = max(room[side], v)
    titles = [t for t in (ax.title, getattr(ax, "_left_title", None), getattr(ax, "_right_title", None))
              if t is not None]
    pad = matplotlib.rcParams["axes.titlepad"] / 72.0
    for t in titles:
        box = _text_box(t, renderer, dpi)
        if box is None:
            continue
        x0, _, x1, y1 = box
        # a title matplotlib places itself goes above top tick labels; one at y=1 (_title) does not
        below = room["top"] if getattr(ax, "_autotitlepos", False) else 0.0
        room["top"] = max(room["top"], below + pad + y1)
        f = t.get_position()[0]
        room["left"] = max(room["left"], -(f * size[0] + x0))
        room["right"] = max(room["right"], f * size[0] + x1 - size[0])
    return room


def _legend_side(legend) -> str | None:
    """``"left"``/``"right"``/``"bottom"``/``"top"`` for a figure legend placed
    with ``loc="outside ..."`` (the side its room is taken from), else None."""
    side = getattr(legend, "_outside_loc", None)
    if side is None or getattr(legend, "_bbox_to_anchor", None) is not None:
        return None  # inside, or anchored somewhere of its own
    return {"lower": "bottom", "upper": "top"}.get(side, side)


class FittedLayout(LayoutEngine):
    """Margins and gaps in inches from what the figure draws, set once per draw.

    The figure's axes form one grid (``fig.subplots`` or ``add_subplot``; any
    width / height ratios).  Each margin is :data:`EDGE_PAD` plus, on that
    side,

    * the largest room (:func:`_axes_room`: tick labels, axis label, offset
      text, titles, their overhang past the axes' ends) of the axes at that
      edge of the grid;
    * each figure legend placed with ``loc="outside <side> ..."`` (its
      measured size plus :data:`GAP`; the legend itself sits at the figure's
      edge, as matplotlib places ``"<side> ..."`` without a layout engine);
    * the suptitle (top: its height plus :data:`GAP`; moved to
      :data:`EDGE_PAD` below the figure's top);
    * each colorbar of :func:`_colorbar` on that side: :data:`GAP`, its
      thickness and its own tick labels and label.

    The gap between two neighbouring columns (rows) is the room on the facing
    sides of their axes plus :data:`GAP`; one gap for all, the largest (a
    gridspec has one ``wspace`` / ``hspace``).  Text sizes come from glyph
    metrics (no tight-bbox pass over the artists), tick labels from the
    axes' locators at the size being set; the margins are measured again at
    the new axes size until they settle (at most three passes; usually two).
    Texts drawn inside the axes (annotations, cell values, inside legends)
    are not looked at: a figure keeps them inside its axes.  An axes with a
    fixed aspect (a heatmap) shrinks inside its grid cell, centred; its
    colorbars follow it.
    """

    _adjust_compatible = True
    _colorbar_gridspec = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.colorbars: list[tuple] = []  # (cax, parents, location, shrink)

    def add_colorbar(self, cax, parents, location: str, shrink: float) -> None:
        self.colorbars.append((cax, list(parents), location, shrink))

    def execute(self, fig: Figure) -> None:
        """Lay ``fig`` out; on a matplotlib whose private helpers used here have moved
        (``Axis._update_ticks``, the text-metrics cache), its constrained layout instead."""
        try:
            self._fit(fig)
        except AttributeError:
            from matplotlib.layout_engine import ConstrainedLayoutEngine

            ConstrainedLayoutEngine().execute(fig)

    def _fit(self, fig: Figure) -> None:
        caxes = {c[0] for c in self.colorbars}
        grid = [ax for ax in fig.axes if ax.get_subplotspec() is not None and ax not in caxes
                and ax.get_visible()]
        if not grid:
            return
        renderer = _canvas(fig).get_renderer()
        size = tuple(float(v) for v in fig.get_size_inches())
        outer = self._outer(fig, renderer)
        rooms: dict = {}
        self._place_colorbars(rooms, size)  # a first length, for their tick locators
        settled = None
        for _ in range(3):  # measured again at the new axes size until the margins settle
            rooms = {ax: _axes_room(ax, renderer, fig.dpi) for ax in grid}
            sides = dict(outer)
            for cax, _parents, location, _shrink in self.colorbars:  # its ticks and label, outwards
                sides[location] += GAP + COLORBAR_WIDTH + _axes_room(cax, renderer, fig.dpi)[location]
            done = _fit_grid(fig, grid, rooms, sides, size)
            self._place_colorbars(rooms, size)
            if settled is not None and max(abs(x - y) for x, y in zip(done, settled)) < 0.01:
                break
            settled = done
        sup = fig._suptitle
        if sup is not None and sup.get_text() and getattr(sup, "_autopos", True):
            sup.set_y(1 - EDGE_PAD / size[1])
            sup.set_verticalalignment("top")

    def _outer(self, fig: Figure, renderer) -> dict[str, float]:
        """Each side's margin beyond the grid's rooms and colorbars:
        :data:`EDGE_PAD`, the outside legends and the suptitle."""
        outer = dict.fromkeys(_SIDES, EDGE_PAD)
        for legend in fig.legends:
            side = _legend_side(legend)
            if side is None or not legend.get_visible():
                continue
            bb = legend.get_window_extent(renderer)
            edge = legend.borderaxespad * legend.prop.get_size_in_points() / 72.0
            extent = (bb.width if side in ("left", "right") else bb.height) / fig.dpi
            outer[side] = max(outer[side], edge) + extent + GAP
        sup = fig._suptitle
        box = _text_box(sup, renderer, fig.dpi) if sup is not None else None
        if box is not None:
            outer["top"] += box[3] - box[1] + GAP
        return outer

    def _place_colorbars(self, rooms: dict, size: tuple[float, float]) -> None:
        """Each colorbar beside its parents' drawn boxes (after their aspect):
        :data:`GAP` beyond their texts on that side, centred on them,
        ``shrink`` of their extent long, :data:`COLORBAR_WIDTH` thick."""
        from matplotlib.transforms import Bbox

        width, height = size
        for cax, parents, location, shrink in self.colorbars:
            for p in parents:
                p.apply_aspect()
            u = Bbox.union([p.get_position(original=False) for p in parents])
            away = GAP + max(rooms[p][location] if p in rooms else 0.0 for p in parents)
            t = COLORBAR_WIDTH
            if location in ("left", "right"):
                h = shrink * u.height
                x0 = u.x1 + away / width if location == "right" else u.x0 - (away + t) / width
                cax.set_position((x0, u.y0 + (u.height - h) / 2, t / width, h))
            else:
                w = shrink * u.width
                y0 = u.y1 + away / height if location == "top" else u.y0 - (away + t) / height
                cax.set_position((u.x0 + (u.width - w) / 2, y0, w, t / height))


def _fit_grid(fig: Figure, grid: list, rooms: dict, outer: dict[str, float],
              size: tuple[float, float]) -> tuple[float, ...]:
    """Set the grid's margins and gaps (see :class:`FittedLayout`) from each
    axes' room and the ``outer`` room of each side, in inches; returns them
    (left, right, bottom, top, column gap, row gap)."""
    width, height = size
    gs = grid[0].get_subplotspec().get_gridspec()
    nrows, ncols = gs.get_geometry()
    # the largest room on each side of the grid lines: left_at[j] of the axes starting at column j, ...
    left_at, right_at = np.zeros(ncols + 1), np.zeros(ncols + 1)
    top_at, bottom_at = np.zeros(nrows + 1), np.zeros(nrows + 1)
    for ax in grid:
        ss, room = ax.get_subplotspec(), rooms[ax]
        left_at[ss.colspan.start] = max(left_at[ss.colspan.start], room["left"])
        right_at[ss.colspan.stop] = max(right_at[ss.colspan.stop], room["right"])
        top_at[ss.rowspan.start] = max(top_at[ss.rowspan.start], room["top"])
        bottom_at[ss.rowspan.stop] = max(bottom_at[ss.rowspan.stop], room["bottom"])
    m = {"left": outer["left"] + left_at[0], "right": outer["right"] + right_at[ncols],
         "bottom": outer["bottom"] + bottom_at[nrows], "top": outer["top"] + top_at[0]}
    wgap = GAP + max((right_at[j] + left_at[j] for j in range(1, ncols)), default=0.0)
    hgap = GAP + max((bottom_at[i] + top_at[i] for i in range(1, nrows)), default=0.0)
    for a, b, total in (("left", "right", width), ("bottom", "top", height)):
        if m[a] + m[b] > 0.7 * total:  # texts too large for the figure: the axes keep 30 %
            k = 0.7 * total / (m[a] + m[b])
            m[a], m[b] = m[a] * k, m[b] * k
    w_avail, h_avail = width - m["left"] - m["right"], height - m["bottom"] - m["top"]
    wgap = min(wgap, 0.5 * w_avail / max(ncols - 1, 1))
    hgap = min(hgap, 0.5 * h_avail / max(nrows - 1, 1))
    gs.update(left=m["left"] / width, right=1 - m["right"] / width,
              bottom=m["bottom"] / height, top=1 - m["top"] / height,
              wspace=wgap / ((w_avail - (ncols - 1) * wgap) / ncols),
              hspace=hgap / ((h_avail - (nrows - 1) * hgap) / nrows))
    for ax in grid:  # GridSpec.update moves the axes of pyplot's figures only
        ax._set_position(ax.get_subplotspec().get_position(fig))
    return (m["left"], m["right"], m["bottom"], m["top"], wgap, hgap)

def _colorbar(fig: Figure, mappable, parents: list, *, location: str = "right",
              shrink: float = 1.0, label: str | None = None, fontsize: float | None = None):
    """A colorbar for ``mappable`` beside the axes ``parents`` (``location``:
    right, left, bottom or top), ``shrink`` of their extent long and
    :data:`COLORBAR_WIDTH` thick, placed by the figure's :class:`FittedLayout`
    (or matplotlib's own layout for another engine)."""
    engine = fig.get_layout_engine()
    if isinstance(engine, FittedLayout):
        cax = fig.add_axes((0.0, 0.0, 0.01, 0.01))  # moved into place at every draw
        cb = fig.colorbar(mappable, cax=cax, location=location)
        engine.add_colorbar(cax, parents, location, shrink)
    else:
        cb = fig.colorbar(mappable, ax=parents, location=location, shrink=shrink, pad=0.02)
    if label is not None:
        cb.set_label(label, fontsize=fontsize)
    return cb


# ------------------------------------------------------------------ downsampling

def minmax_rows(values, max_points: int = MAX_POINTS) -> np.ndarray:
    """Sorted row positions of a shape-preserving subsample of ``values``.

    ``values`` (1-D, finite) is cut into buckets of ``L = ceil(n / b)``
    consecutive rows (the last one shorter), ``b = (max_points - 2) // 2``;
    each bucket keeps the row of its minimum and of its maximum (the first
    one on ties), and the first and last rows are kept, so at most
    ``max_points`` rows remain and every peak and trough is drawn.  Inputs
    of at most ``max_points`` rows keep every row.
    """
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    if n <= max_points:
        return np.arange(n)
    n_buckets = max(1, (max_points - 2) // 2)
    size = -(-n // n_buckets)
    n_buckets = -(-n // size)
    pad = n_buckets * size - n
    # padding repeats the last value after it, so argmin/argmax (first occurrence) never pick it
    w = np.concatenate([v, np.full(pad, v[-1])]) if pad else v
    w = w.reshape(n_buckets, size)
    base = np.arange(n_buckets) * size
    return np.unique(np.concatenate([[0, n - 1], base + w.argmin(axis=1),
                                     base + w.argmax(axis=1)]))


def downsample(data: pd.Series, max_points: int = MAX_POINTS) -> pd.Series:
    """``data`` without its NaN rows, reduced to at most ``max_points`` rows
    that keep each bucket's minimum and maximum (see :func:`minmax_rows`).

    The result is a subset of the original rows (same index labels and
    values, in order): the first and last rows, and the extremes of every
    bucket, so drawdown troughs and equity peaks survive.  Short inputs are
    returned unchanged (as the same object when they have no NaN).
    """
    s = data if isinstance(data, pd.Series) else pd.Series(data)
    if s.isna().any():
        s = s.dropna()
    if len(s) <= max_points:
        return s
    return s.iloc[minmax_rows(s.to_numpy(dtype=np.float64), max_points)]


def _sample_rows(n: int, max_points: int = MAX_POINTS // 2) -> np.ndarray:
    """Every ``L``-th row (``L = ceil(n / max_points)``) from 0, and the last row."""
    step = max(1, -(-n // max_points))
    rows = np.arange(0, n, step)
    return rows if rows[-1] == n - 1 else np.append(rows, n - 1)


# tab10 then ten further colours that stay distinct from it (and readable on white)
#: tab10: ten hues far apart (CIELAB distance >= 27 between any two); a sleeve's
#: style beyond the tenth repeats a hue with another dash (and marker), so two
#: legend entries always differ in colour or in line style
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#7f7f7f", "#bcbd22", "#17becf"]
_LINESTYLES = ["-", (0, (5, 2)), (0, (1, 1.5)), (0, (5, 2, 1, 2))]
_MARKERS = ["o", "s", "^", "D"]


def asset_styles(assets: Iterable[str]) -> dict[str, dict]:
    """``{asset: {"color", "ls", "marker"}}``: the ten tab10 hues with a solid
    line and a circle, then the same hues dashed with a square, dotted with
    a triangle, dash-dotted with a diamond (up to 40 assets); beyond, a
    sampled continuous map (solid, circles)."""
    assets = list(assets)
    n = len(assets)
    if n <= len(_PALETTE) * len(_LINESTYLES):
        return {a: {"color": _PALETTE[i % 10], "ls": _LINESTYLES[i // 10],
                    "marker": _MARKERS[i // 10]} for i, a in enumerate(assets)}
    cmap = colormaps["turbo"]
    return {a: {"color": cmap(0.05 + 0.9 * i / max(n - 1, 1)), "ls": "-", "marker": "o"}
            for i, a in enumerate(assets)}


def asset_colors(assets: Iterable[str]) -> dict[str, tuple | str]:
    """Each asset's colour of :func:`asset_styles` (distinct up to ten assets;
    beyond, draw with the styles' dashes or markers too)."""
    return {a: s["color"] for a, s in asset_styles(assets).items()}


def _legend_outside(fig: Figure, ax, n_items: int, title: str | None = None,
                    handles=None) -> None:
    """Legend inside (best) for a few entries, outside the axes on the right
    (in columns of at most 22) for many."""
    kw = {} if handles is None else {"handles": handles}
    if n_items <= 5:
        ax.legend(loc="best", fontsize=9, framealpha=0.85, **kw)
        return
    ncol = max(1, math.ceil(n_items / 22))
    fs = 8 if n_items <= 22 else 7
    fig.legend(loc="outside right upper", fontsize=fs, ncol=ncol, frameon=False,
               title=title, title_fontsize=fs, **kw)


def _portfolio_series(equity) -> pd.Series:
    if isinstance(equity, pd.Series):
        return equity.astype(float)
    if "equity" in equity.columns:
        return equity["equity"].astype(float)
    cols = [c for c in equity.columns if c != "drawdown"]
    return equity[cols].sum(axis=1).astype(float)


def _breaker_spans(events: pd.DataFrame | None, end) -> list[tuple]:
    """(trip_time, resume_time or ``end``) pairs from an events table."""
    if events is None or len(events) == 0 or "event" not in events.columns:
        return []
    times = _to_times(events["decided_at"])
    kinds = events["event"].astype(str).str.lower()
    spans, start = [], None
    for t, k in zip(times, kinds):
        if "trip" in k and start is None:
            start = t
        elif "resume" in k and start is not None:
            spans.append((start, t))
            start = None
    if start is not None:
        spans.append((start, end))
    return spans


def _event_times(events: pd.DataFrame | None, word: str) -> pd.DatetimeIndex:
    if events is None or len(events) == 0 or "event" not in events.columns:
        return pd.DatetimeIndex([], tz="UTC")
    mask = events["event"].astype(str).str.lower().str.contains(word, regex=False)
    return _to_times(events.loc[mask, "decided_at"])


def _row_blocks(n_rows: int, n_cols: int, multiple: int = 1):
    """``(start, stop)`` row ranges of about :data:`_ROW_BLOCK` elements each
    (a multiple of ``multiple`` rows), so a scan over assets x bars never
    copies the whole array."""
    rows = max(multiple, (_ROW_BLOCK // max(n_cols, 1)) // multiple * multiple)
    return [(a, min(a + rows, n_rows)) for a in range(0, n_rows, rows)]


def _column_positions(frame: pd.DataFrame, names: list) -> np.ndarray | None:
    """Positions of ``names`` in ``frame``'s columns (None when they are all of them, in order)."""
    if list(frame.columns) == list(names):
        return None
    return frame.columns.get_indexer(names)


def _block(values: np.ndarray, a: int, b: int, cols: np.ndarray | None) -> np.ndarray:
    blk = values[a:b]
    return blk if cols is None else blk[:, cols]
