"""The Grafana dashboard shipped for the raybt gauges (monitoring/grafana/raybt.json).

It must load as a Grafana dashboard (a JSON model Grafana provisions: title,
uid, panels with grid positions inside the 24-column grid, Prometheus
targets through the ``datasource`` variable), query each gauge under the
name Ray's Prometheus export gives it (``ray_`` prefix, ``_total`` for the
counter), and use only template variables it defines.  The names are
checked against the gauges raybt.ray.metrics actually creates.
"""

from __future__ import annotations

import json
import re

import pytest

METRICS = ["ray_raybt_portfolio_equity", "ray_raybt_portfolio_drawdown", "ray_raybt_breaker_tripped",
           "ray_raybt_chunks_done_total", "ray_raybt_asset_equity"]


@pytest.fixture(scope="module")
def dashboard(repo_root):
    return json.loads((repo_root / "monitoring" / "grafana" / "raybt.json").read_text())


def _panels(dash):
    for p in dash["panels"]:
        yield p
        yield from p.get("panels", [])


def test_dashboard_is_a_grafana_model(dashboard):
    assert dashboard["title"] and re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard["uid"])
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 16
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(ids) == len(set(ids))
    graphs = [p for p in _panels(dashboard) if p["type"] != "row"]
    assert len(graphs) >= 5
    cells = set()
    for p in _panels(dashboard):
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):  # panels do not overlap
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, p["title"]
                cells.add((x, y))
    for p in graphs:
        assert p["type"] in ("timeseries", "stat", "graph")
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert p["targets"] and all(t["expr"] and t["refId"] for t in p["targets"])
        assert p["title"] and p["description"]


def test_dashboard_queries_every_gauge_by_its_exported_name(dashboard):
    exprs = " ".join(t["expr"] for p in _panels(dashboard) for t in p.get("targets", []))
    for name in METRICS:
        assert re.search(rf"\b{name}\b", exprs), name
    # a counter is read as a rate: chunks per second
    assert re.search(r"rate\(ray_raybt_chunks_done_total\{[^}]*\}\[\$__rate_interval\]\)", exprs)
    # per-asset equity by its asset tag, and readable at 1,000 assets
    assert "by (run, asset)" in exprs and "topk(10" in exprs and "bottomk(10" in exprs
    titles = {p["title"] for p in _panels(dashboard)}
    assert {"Portfolio equity", "Portfolio drawdown", "Chunks per second"} <= titles


def test_dashboard_uses_only_variables_it_defines(dashboard):
    defined = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "SessionName", "run", "asset"} <= defined
    ds = next(v for v in dashboard["templating"]["list"] if v["name"] == "datasource")
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    text = json.dumps(dashboard)
    used = set(re.findall(r"\$\{?([A-Za-z_]\w*)", text)) - {"__rate_interval", "__all"}
    assert used <= defined, used - defined


def test_names_match_the_gauges_raybt_creates(repo_root):
    source = (repo_root / "raybt" / "ray" / "metrics.py").read_text()
    created = re.findall(r'(Gauge|Counter)\("(raybt_\w+)"', source)
    exported = {f"ray_{name}" + ("_total" if kind == "Counter" else "") for kind, name in created}
    assert exported == set(METRICS)


def test_monitoring_readme_says_how_to_see_them(repo_root):
    text = (repo_root / "monitoring" / "README.md").read_text()
    for words in ("ray metrics launch-prometheus", "/tmp/ray/session_latest/metrics/grafana/grafana.ini",
                  "grafana/raybt.json", "Ray dashboard: http://127.0.0.1:8265", "RAY_GRAFANA_HOST",
                  "RAY_PROMETHEUS_HOST", *METRICS):
        assert words in text, words
