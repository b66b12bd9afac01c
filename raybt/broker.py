"""The kernel's records of one asset's parameters and state.

:func:`param_record` packs a validated parameter ``dict``
(:func:`raybt.config.params.validate_params`) into the kernel's ``PARAM_DT``
record and :func:`initial_state` builds the matching ``STATE_DT`` record.

Units: prices in quote currency; ``initial_capital`` in account currency;
``weight`` a fraction of the portfolio (sleeve capital = initial_capital *
weight); ``commission`` and ``risk_per_trade`` fractions (0.001 = 0.1 %);
``spread`` and ``slippage`` price units; ``leverage`` a multiple (30 = 30:1);
``stop_out_level`` a fraction of the margin held.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from raybt.types import PARAM_DT, SIZING_NAMES, STATE_DT


def param_record(params: Mapping[str, Any]) -> np.ndarray:
    """Pack a validated parameter dict into a 0-d ``PARAM_DT`` record array."""
    rec = np.zeros((), dtype=PARAM_DT)
    for key in ("bb_period", "atr_period", "max_hold_bars"):
        rec[key] = int(params[key])
    for key in (
        "entry_z", "exit_z", "sl_atr", "tp_atr", "size", "risk_per_trade", "lot_size",
        "contract_size", "leverage", "stop_out_level", "commission", "spread", "slippage",
    ):
        rec[key] = float(params[key])
    rec["allow_short"] = 1 if params["allow_short"] else 0
    rec["sizing"] = SIZING_NAMES.index(params["sizing"])
    rec["initial_cash"] = float(params["initial_capital"]) * float(params["weight"])
    return rec


def param_records(param_dicts) -> np.ndarray:
    """``PARAM_DT`` array, one record per parameter dict."""
    out = np.zeros(len(param_dicts), dtype=PARAM_DT)
    for i, params in enumerate(param_dicts):
        out[i] = param_record(params)
    return out


def initial_state(params: np.ndarray) -> np.ndarray:
    """Fresh ``STATE_DT`` records (flat, nothing pending) for ``PARAM_DT`` records."""
    state = np.zeros(params.shape, dtype=STATE_DT)
    state["cash"] = params["initial_cash"]
    state["last_equity"] = params["initial_cash"]
    return state


