"""FittedLayout: report figures laid out in inches from the texts they draw.

Matplotlib's constrained layout measures the tight bounding box of every
artist, twice per draw (40-180 ms a report figure here, about a third of
their drawing time).  :class:`FittedLayout` sets the margins and gaps from
glyph metrics of what sits outside the axes (tick labels, axis labels,
titles, outside legends, colorbars of :func:`_colorbar`), measured through
matplotlib's text-size cache that the draw then reuses (10-90 ms).  Where
the matplotlib internals it reads have moved, it falls back to constrained
layout (see :meth:`FittedLayout.execute`).
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.layout_engine import LayoutEngine


def _canvas(fig: Figure):
    """The figure's Agg canvas (made once: its renderer, and so matplotlib's
    text-size cache, is shared by a layout pass and the final draw)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)


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
    from matplotlib.text import _get_text_metrics_with_cache as _metrics
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
            self._place_colorbars({}, tuple(float(v) for v in fig.get_size_inches()))  # beside their axes

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
