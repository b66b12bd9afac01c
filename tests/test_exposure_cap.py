"""The portfolio's exposure cap ``max_margin`` (config ``risk.max_entry_margin``).

The coordinator sends ``max_margin = cap x portfolio equity`` (at the end of
the previous chunk); the kernel caps a new entry's units so that its margin
held is at most ``max_margin``, in the spec's sizing step: after the size
multiplier, before the last rounding down to lots. Checked here against the
plain reference (tests/reference_sim.py) on random cases, and end to end
through the engine, including the shipped balanced config.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel_harness import kernel_run
from reference_sim import reference_run
from test_kernel import _assert_same, bar_series, chunk_lists, param_sets

from raybt.config.params import validate_params
from raybt.config import AssetConfig
from raybt.data.synth import generate_universe
from raybt.engine import PortfolioBacktester
from raybt.config.portfolio import portfolio_config_from_dict

REPO = Path(__file__).resolve().parent.parent

#: caps as fractions of the sleeve's starting cash: off, nothing, and from tiny to above the equity cap
CAP_FRACTIONS = [math.inf, 0.0, 1e-5, 1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5, 1.0, 3.0]


def _capped_chunks(data, params, n_bars):
    """Random chunks over ``n_bars``, each with a margin cap drawn as a fraction of the sleeve's cash."""
    chunks = data.draw(chunk_lists(n_bars))
    cash = params["initial_capital"] * params["weight"]
    for chunk in chunks:
        chunk["max_margin"] = cash * data.draw(st.sampled_from(CAP_FRACTIONS))
    return chunks


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_bars_with_an_exposure_cap_match_reference(data):
    bars = data.draw(bar_series())
    params = data.draw(param_sets())
    chunks = _capped_chunks(data, params, len(bars[3]))
    _assert_same(kernel_run(*bars, params, chunks), reference_run(*bars, params, chunks))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_exposure_cap_is_chunk_invariant(data):
    """Splitting a chunk (no new instructions) keeps its cap in force: nothing changes."""
    bars = data.draw(bar_series(min_bars=2, max_bars=300))
    params = data.draw(param_sets())
    chunks = _capped_chunks(data, params, len(bars[3]))
    n = len(bars[3])
    splits = data.draw(st.lists(st.integers(1, max(1, n - 1)), max_size=8))
    whole = kernel_run(*bars, params, chunks)
    split = kernel_run(*bars, params, chunks, split_points=splits)
    assert whole[0] == split[0]
    assert np.array_equal(np.asarray(whole[1]), np.asarray(split[1]))


def test_cap_binds_often_in_fixed_cases():
    """The random cases above are worth something only if the cap changes trades: on fixed
    series, a 5 % cap must change the units of many entries (and the reference agrees)."""
    rng = np.random.default_rng(2)
    changed = total = 0
    for seed in range(6):
        n = 600
        close = 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 3e-3, n)))
        open_ = np.r_[close[0], close[:-1]]
        high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 1e-3, n)))
        low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 1e-3, n)))
        params = {"size": 500.0, "leverage": 5.0, "initial_capital": 100000.0, "bb_period": 10, "entry_z": 1.5}
        capped = [{"start": 0, "max_margin": 500.0}]
        free, _ = reference_run(open_, high, low, close, params)
        cut, _ = reference_run(open_, high, low, close, params, capped)
        _assert_same(kernel_run(open_, high, low, close, params, capped), reference_run(open_, high, low, close,
                                                                                        params, capped))
        total += len(cut)
        changed += sum(1 for t in cut if t["units"] * t["entry_price"] / 5.0 <= 500.0 + 1e-9
                       and t["units"] < 500.0)
        assert all(t["units"] * t["entry_price"] / 5.0 <= 500.0 * (1 + 1e-12) for t in cut)
        assert any(t["units"] == 500.0 for t in free)
    assert total > 30 and changed == total  # 500 units at ~100 are 10,000 of margin, far above the 500 cap


# --- through the engine ----------------------------------------------------------------------------

def _margins(result, params_by_name):
    """Each trade's margin held and the max_margin in force in the chunk its entry filled in."""
    trades = result.trades
    m = result.multipliers
    starts = m.groupby("chunk")["chunk_start"].first()
    chunk_of_entry = np.searchsorted(starts.to_numpy(), trades["entry_time"].to_numpy(), side="right") - 1
    cap = m.set_index(["chunk", "asset"])["max_margin"]
    names = trades["asset"].astype(str)
    lev = names.map({n: p["leverage"] for n, p in params_by_name.items()}).to_numpy(dtype=float)
    cs = names.map({n: p["contract_size"] for n, p in params_by_name.items()}).to_numpy(dtype=float)
    lot = names.map({n: p["lot_size"] for n, p in params_by_name.items()}).to_numpy(dtype=float)
    margin = trades["units"].to_numpy() * trades["entry_price"].to_numpy() * cs / lev
    allowed = np.array([cap[(int(k), a)] for k, a in zip(chunk_of_entry, names)])
    lot_margin = lot * trades["entry_price"].to_numpy() * cs / lev  # one lot's margin: the rounding slack
    return margin, allowed, lot_margin


def test_engine_caps_each_entry_at_the_share_of_portfolio_equity():
    universe = generate_universe(n_assets=2, n_bars=3 * 288, timeframe="5m", seed=8, calendar="24x7")
    params = validate_params({"sizing": "fixed", "size": 1e8, "lot_size": 1.0, "leverage": 20, "bb_period": 20,
                              "entry_z": 1.5})
    assets = {name: (AssetConfig(name=name, data=None, timeframe="5m", params=params), bars)
              for name, bars in universe.items()}

    def config(cap):
        return portfolio_config_from_dict({
            "name": "cap", "initial_capital": 1_000_000, "engine": {"chunk": "4h"},
            "risk": {"max_portfolio_drawdown": 0.9, "dd_scale_start": 0.8, "cluster_correlation": None,
                     "max_entry_margin": cap}}, "cap")

    capped = PortfolioBacktester(assets, config(0.2), engine="local").run()
    free = PortfolioBacktester(assets, config(None), engine="local").run()
    portfolio_at_decision = capped.equity["equity"].reindex(
        pd.DatetimeIndex(capped.multipliers["decided_at"])).to_numpy()
    later = (capped.multipliers["chunk"] > 0).to_numpy()
    np.testing.assert_array_equal(capped.multipliers["max_margin"].to_numpy()[later],
                                  0.2 * portfolio_at_decision[later])
    assert np.isinf(free.multipliers["max_margin"]).all()
    margin, allowed, lot_margin = _margins(capped, {n: params for n in assets})
    decided = np.isfinite(allowed)  # entries of the first chunk: no cap decided yet
    assert len(margin) > 10 and decided.sum() > 10
    assert (margin <= allowed * (1 + 1e-12)).all()
    # every entry is held at the cap: 1e8 units ask for far more (and the cap is below each sleeve's equity)
    assert (margin[decided] > allowed[decided] - lot_margin[decided]).all()
    free_margin, _, _ = _margins(free, {n: params for n in assets})
    assert free_margin.max() > 2 * allowed[decided].max()  # without the cap: up to the sleeve's equity


def test_shipped_balanced_config_exposure_cap_binds_on_some_entries(tmp_path):
    """configs/portfolio_balanced.yaml sets risk.max_entry_margin (1.5 % of the portfolio). A cap that never
    binds is a setting that does nothing: some entry of a balanced run must be held at the cap.

    60 days of the bundled synthetic universe (same assets, parameters and seed, shorter)."""
    from raybt.config.resolve import resolve_portfolio

    configs, pconf, universe = resolve_portfolio(None, REPO / "configs" / "portfolio_balanced.yaml",
                                                 best_configs_dir=tmp_path)
    assert 0 < pconf.risk.max_entry_margin < 1
    bars = generate_universe(n_assets=len(configs), n_bars=60 * 288, timeframe="5m", seed=universe.synthetic.seed)
    assets = {c.name: (c, bars[c.name]) for c in configs}
    result = PortfolioBacktester(assets, pconf, engine="local").run()
    margin, allowed, lot_margin = _margins(result, {c.name: c.params for c in configs})
    assert len(margin) > 100 and (margin <= allowed * (1 + 1e-12)).all()
    bound = margin > allowed - lot_margin
    uncapped = dataclasses.replace(pconf, risk=dataclasses.replace(pconf.risk, max_entry_margin=None))
    same = PortfolioBacktester(assets, uncapped, engine="local").run().trades.equals(result.trades)
    sleeves = result.equity[[c.name for c in configs]]
    assert bound.any(), (
        f"the {pconf.risk.max_entry_margin} cap never binds: the largest entry margin is {(margin / allowed).max():.1%} of max_margin, "
        f"the largest sleeve {(sleeves.max(axis=1) / result.equity['equity']).max():.1%} of the portfolio "
        f"(the kernel already caps margin at the sleeve's equity); trades with the cap off identical: {same}")

