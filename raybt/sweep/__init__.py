"""Parameter sweeps over portfolio configs: ``raybt sweep configs/sweep.yaml``.

* :mod:`raybt.sweep.spec` -- the sweep file (base portfolio config, product or
  list of dotted-path values) -> validated :class:`SweepPoint` s with stable ids;
* :mod:`raybt.sweep.runner` -- one full portfolio backtest per point (a Ray
  task each, or in-process), resumable point folders, the ranked table, the
  scatter plot, ``best_config.yaml`` and ``sweep.json``;
* :mod:`raybt.sweep.command` -- the ``raybt sweep`` options and command.
"""

from raybt.sweep.runner import SweepResult, execute_point, point_summary, rank_table, run_sweep
from raybt.config.sweep import SweepPoint, SweepSpec, load_sweep_spec, resolve_points, sweep_spec_from_dict

__all__ = ["SweepPoint", "SweepResult", "SweepSpec", "execute_point", "load_sweep_spec", "point_summary",
           "rank_table", "resolve_points", "run_sweep", "sweep_spec_from_dict"]
