"""Parameter optimisation (``raybt optimize``).

* :mod:`raybt.config.grid`: the grid file -> validated candidates
  (:func:`load_grid`, :class:`GridSpec`, :class:`SelectionRules`);
* :mod:`raybt.optimize.evaluate`: numba batch evaluation of many parameter
  sets x bar spans on one asset (:func:`evaluate_jobs`, :func:`evaluate_params`);
* :mod:`raybt.optimize.select`: the ``balanced`` / ``pnl`` / ``drawdown``
  preferences (:func:`select_candidate`);
* :mod:`raybt.optimize.runner`: Ray (or in-process) distribution, train/test
  split, walk-forward (:func:`run_optimization`);
* :mod:`raybt.optimize.outputs`: ``best_configs_*.json`` and the tables (:func:`write_outputs`);
* :mod:`raybt.optimize.command`: argparse options and the command
  (:func:`add_optimize_arguments`, :func:`optimize_command`).

Names are imported lazily so ``import raybt.optimize`` stays light.
"""

from raybt.lazy import lazy_getattr

_EXPORTS = {
    **dict.fromkeys(["GridSpec", "SelectionRules", "load_grid", "parse_grid", "expand_grid", "candidate_params"],
                    "raybt.config.grid"),
    "evaluate_jobs": "evaluate", "evaluate_params": "evaluate",
    "PREFERENCES": "select", "select_candidate": "select",
    "run_optimization": "runner", "write_outputs": "outputs", "walk_forward_windows": "runner",
    "train_split": "runner", "OptimizeResult": "runner",
    "add_optimize_arguments": "command", "optimize_command": "command",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS)
