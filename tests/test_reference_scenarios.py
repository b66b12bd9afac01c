"""The reference simulator on hand-made scenarios: each spec rule, hand-checked."""

from __future__ import annotations

import math

import pytest

from reference_sim import reference_run
from scenarios import SCENARIOS


@pytest.mark.parametrize("s", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_scenario_outcome(s):
    trades, equity = reference_run(s["open"], s["high"], s["low"], s["close"], s["params"], s["chunks"])
    got = [(t["entry_bar"], t["exit_bar"], t["side"], t["exit_reason"]) for t in trades]
    want = [tuple(e) for e in s["expect"]]
    assert got == want
    for t, (entry, exit_) in zip(trades, s.get("prices", [])):
        assert math.isclose(t["entry_price"], entry, abs_tol=1e-12)
        assert math.isclose(t["exit_price"], exit_, abs_tol=1e-12)
    for t, units in zip(trades, s.get("units", [])):
        assert math.isclose(t["units"], units, rel_tol=1e-12)
    for t, pnl in zip(trades, s.get("pnl", [])):
        assert math.isclose(t["pnl"], pnl, rel_tol=1e-9)
    if "final_equity" in s:
        assert math.isclose(equity[-1], s["final_equity"], rel_tol=1e-12)


@pytest.mark.parametrize("s", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_scenario_invariants(s):
    trades, equity = reference_run(s["open"], s["high"], s["low"], s["close"], s["params"], s["chunks"])
    p = s["params"]
    start = p.get("initial_capital", 100000.0) * p.get("weight", 1.0)
    adjustments = sum(c.get("capital_adjustment", 0.0) for c in (s["chunks"] or []))
    assert math.isclose(equity[-1], start + adjustments + sum(t["pnl"] for t in trades), rel_tol=1e-12)
    for a, b in zip(trades, trades[1:]):
        assert a["exit_bar"] <= b["entry_bar"]
    n = len(s["close"])
    for t in trades:
        if t["exit_reason"] in ("end", "stopout"):
            assert t["exit_price"] == s["close"][t["exit_bar"]]
        if t["exit_reason"] == "breaker":
            assert t["exit_price"] == s["open"][t["exit_bar"]]
        assert t["exit_reason"] != "end" or t["exit_bar"] == n - 1
