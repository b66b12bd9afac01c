"""Parameter sweeps over portfolio configs: ``raybt sweep configs/sweep.yaml``.

* :mod:`raybt.sweep.spec` -- the sweep file (base portfolio config, product or
  list of dotted-path values) -> validated :class:`SweepPoint` s with stable ids;
* :mod:`raybt.sweep.runner` -- one full portfolio backtest per point (a Ray
  task each, or in-process), resumable point folders, the ranked table, the
  scatter plot, ``best_config.yaml`` and ``sweep.json``;
* :mod:`raybt.sweep.command` -- the ``raybt sweep`` options and command.

Names are imported lazily, so that building the command line (which imports
:mod:`raybt.sweep.command`) does not import the runner and pandas.
"""

from raybt.lazy import lazy_getattr

_EXPORTS = {
    **dict.fromkeys(["SweepResult", "execute_point", "point_summary", "rank_table", "run_sweep"], "runner"),
    **dict.fromkeys(["SweepPoint", "SweepSpec", "load_sweep_spec", "resolve_points", "sweep_spec_from_dict"],
                    "raybt.config.sweep"),
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS)
