"""Label placement for scatter plots: each label beside its point, clear of the others.

Used by the report's frontier (:mod:`raybt.plots.cross`) and the sweep's
scatter (:mod:`raybt.sweep.outputs`).  Geometry only (boxes in display
points estimated from the font size), so placing n labels costs no
rendering: O(n^2) box tests, not a draw per candidate.
"""

from __future__ import annotations

import numpy as np

_DIRS = [(1, 0, "left", "center"), (-1, 0, "right", "center"),
         (0.7, 0.7, "left", "bottom"), (0.7, -0.7, "left", "top"),
         (-0.7, 0.7, "right", "bottom"), (-0.7, -0.7, "right", "top"),
         (0, 1, "center", "bottom"), (0, -1, "center", "top")]
_DISTS = (6.0, 14.0, 24.0, 36.0, 50.0)


def _overlaps(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Summed overlap area of each (x0, y0, x1, y1) box with all ``others``."""
    if len(others) == 0:
        return np.zeros(len(boxes))
    w = (np.minimum(boxes[:, None, 2], others[None, :, 2])
         - np.maximum(boxes[:, None, 0], others[None, :, 0]))
    h = (np.minimum(boxes[:, None, 3], others[None, :, 3])
         - np.maximum(boxes[:, None, 1], others[None, :, 1]))
    return (np.clip(w, 0, None) * np.clip(h, 0, None)).sum(axis=1)


def place_labels(points: np.ndarray, labels: list[str], fontsize: float,
                 obstacles: np.ndarray, bounds: tuple,
                 sizes: np.ndarray | None = None) -> list[tuple[float, float, str, str]]:
    """Greedy label placement in display points (1/72 in).

    ``points`` (n, 2) anchor positions, ``labels`` their texts (one or more
    lines), ``obstacles`` (m, 3) circles (x, y,
    radius) labels must avoid (markers, sampled lines), ``bounds`` the axes
    box, ``sizes`` (n, 2) each label's measured width and height in points
    (default: estimated from ``fontsize``, 0.62 of it per character, 1.3 per
    line: about right for lower case, narrow for capitals).  For each label
    (top-most anchor first) the first candidate offset
    around its point, at growing distances, that overlaps no placed label
    and no obstacle and stays inside ``bounds`` wins; else the least
    overlapping.  Returns ``(dx, dy, ha, va)`` offsets in points per label.
    """
    cw, ch = 0.62 * fontsize, 1.3 * fontsize
    dist = np.repeat(_DISTS, len(_DIRS))
    ox = dist * np.tile([d[0] for d in _DIRS], len(_DISTS))
    oy = dist * np.tile([d[1] for d in _DIRS], len(_DISTS))
    has = [d[2] for d in _DIRS] * len(_DISTS)
    vas = [d[3] for d in _DIRS] * len(_DISTS)
    fx = np.array([{"left": 0.0, "right": -1.0, "center": -0.5}[a] for a in has])
    fy = np.array([{"bottom": 0.0, "top": -1.0, "center": -0.5}[a] for a in vas])
    obst = np.asarray(obstacles, dtype=float).reshape(-1, 3)
    obst_boxes = np.column_stack([obst[:, 0] - obst[:, 2], obst[:, 1] - obst[:, 2],
                                  obst[:, 0] + obst[:, 2], obst[:, 1] + obst[:, 2]])
    placed = np.zeros((0, 4))
    out: list = [None] * len(labels)
    for i in np.argsort(-points[:, 1], kind="stable"):
        x, y = points[i]
        if sizes is not None:
            w, h = sizes[i]
        else:
            lines = str(labels[i]).split("\n")
            w, h = cw * max(len(line) for line in lines), ch * len(lines)
        x0, y0 = x + ox + fx * w, y + oy + fy * h
        boxes = np.column_stack([x0, y0, x0 + w, y0 + h])
        cost = _overlaps(boxes, placed) + _overlaps(boxes, obst_boxes)
        outside = (np.clip(bounds[0] - boxes[:, 0], 0, None)
                   + np.clip(boxes[:, 2] - bounds[2], 0, None)
                   + np.clip(bounds[1] - boxes[:, 1], 0, None)
                   + np.clip(boxes[:, 3] - bounds[3], 0, None))
        cost = cost + outside * h * 4 + dist * 0.05  # prefer close placements
        # the nearest ring with a (nearly) free spot, else the least bad spot of all
        ring_best = cost.reshape(len(_DISTS), len(_DIRS)).min(axis=1)
        good = np.flatnonzero(np.minimum.accumulate(ring_best) < 5.0)
        upto = (good[0] + 1) * len(_DIRS) if len(good) else len(cost)
        j = int(np.argmin(cost[:upto]))
        placed = np.vstack([placed, boxes[j]])
        out[i] = (float(ox[j]), float(oy[j]), has[j], vas[j])
    return out
