"""Configuration in one place: renamed settings, overrides that say what they changed, packaged defaults."""

from __future__ import annotations

import pytest

from raybt.config import portfolio_config_from_dict
from raybt.errors import ConfigError


@pytest.mark.parametrize("old, new", [("max_single_asset_weight", "max_entry_margin"),
                                      ("max_asset_correlation", "cluster_correlation")])
def test_a_setting_that_meant_two_things_is_renamed_with_a_pointer(old, new):
    with pytest.raises(ConfigError, match=rf"p.yaml: risk.{old} was renamed risk.{new} \("):
        portfolio_config_from_dict({"risk": {old: 0.5}}, "p.yaml")
    config = portfolio_config_from_dict({"risk": {new: 0.5}, "allocation": {old: 0.5}}, "p.yaml")
    assert getattr(config.risk, new) == 0.5 and getattr(config.allocation, old) == 0.5


def test_an_override_is_said_in_the_description():
    base = portfolio_config_from_dict({"description": "Equal-weight, moderate risk.",
                                       "allocation": {"model": "equal_weight"}}, "p.yaml")
    changed = base.with_overrides(allocation_model="risk_parity", checkpoint_seconds=5)
    assert changed.description == "Equal-weight, moderate risk. [changed here: allocation.model=risk_parity]"
    assert base.with_overrides(allocation_model="equal_weight").description == base.description
    assert base.with_overrides(format="csv").description == base.description


def _cli(*args):
    import sys

    return [sys.executable, "-m", "raybt.cli", *map(str, args)]


def test_init_writes_editable_configs_and_keeps_existing_ones(tmp_path):
    import subprocess

    from raybt.config.defaults import defaults_dir

    done = subprocess.run(_cli("init", tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    shipped = sorted(p.name for p in defaults_dir().iterdir() if p.suffix in (".yaml", ".json"))
    assert sorted(p.name for p in (tmp_path / "configs").iterdir()) == shipped
    for name in shipped:
        assert (tmp_path / "configs" / name).read_bytes() == (defaults_dir() / name).read_bytes()
    (tmp_path / "configs" / "grid.yaml").write_text("# mine\n")
    again = subprocess.run(_cli("init", tmp_path), capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "already exists" in again.stderr and "--overwrite" in again.stderr
    assert (tmp_path / "configs" / "grid.yaml").read_text() == "# mine\n"


def test_run_from_an_installed_wheel_in_an_empty_folder(tmp_path, repo_root):
    """pip install (a wheel, as users get it), then raybt run in an empty folder: the shipped defaults are used."""
    import subprocess
    import sys

    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                            str(wheels), str(repo_root)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    venv = tmp_path / "venv"
    # without a pip of its own (6 s less): this process's pip installs into it
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    wheel = next(wheels.glob("raybt-*.whl"))
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                                "--force-reinstall", str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    where = subprocess.run([str(python), "-c", "import raybt; print(raybt.__file__)"], capture_output=True,
                           text=True, cwd=empty, timeout=60)
    assert str(venv) in where.stdout  # the wheel, not the clone
    done = subprocess.run([str(python), "-m", "raybt.cli", "run", "--engine", "local", "--no-progress",
                           "--out", "results/first"], capture_output=True, text=True, cwd=empty, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "wrote raybt's default configs to configs/" in done.stderr
    assert (empty / "configs" / "portfolio_balanced.yaml").is_file()
    assert (empty / "data" / "synth" / "5m" / "universe.json").is_file()  # the bundled data, under this folder
    assert (empty / "results" / "first" / "report.html").is_file()
