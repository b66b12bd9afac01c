"""Small synthetic universes written for CLI tests (``raybt data synth``)."""

from __future__ import annotations

from pathlib import Path


def synth_universe(folder: Path, *, assets: int, bars: int, seed: int, fmt: str = "parquet") -> dict:
    """``{name: path}`` of a ``raybt data synth`` universe (24/7 calendar) written into ``folder``."""
    from raybt.cli import main

    assert main(["data", "synth", "--out", str(folder), "--assets", str(assets), "--bars", str(bars),
                 "--calendar", "24x7", "--seed", str(seed), "--format", fmt]) == 0
    return {p.stem: p for p in sorted(folder.glob(f"*.{fmt}"))}
