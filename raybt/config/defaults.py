"""The default configs, shipped inside the package, and ``raybt init``.

The repository's ``configs/`` folder is installed as the package data
``raybt/default_configs/`` (pyproject maps one onto the other), so an
installed raybt has its defaults wherever it runs. ``raybt init [DIR]`` writes
an editable copy to ``DIR/configs/``; a command whose default config file is
missing (``configs/portfolio_balanced.yaml`` for ``raybt run``, ...) writes
that copy into the current folder first and says so, so ``raybt run`` works in
an empty folder: the configs' relative paths then put the bundled synthetic
data in ``./data/`` and the results in ``./results/``, as in a clone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from raybt.errors import ConfigError

FOLDER = Path("configs")


def defaults_dir() -> Path:
    """The shipped configs: ``raybt/default_configs/`` when installed, the repository's ``configs/`` in a clone."""
    package = Path(__file__).resolve().parent.parent
    for folder in (package / "default_configs", package.parent / "configs"):
        if (folder / "portfolio_balanced.yaml").is_file():
            return folder
    raise ConfigError(f"{package / 'default_configs'}: raybt's default configs are missing from this installation")


def write_defaults(target: Path, *, overwrite: bool = False) -> list[Path]:
    """Copy every default config into ``target`` (a ``configs`` folder); existing files are kept
    unless ``overwrite`` (ConfigError naming the first one)."""
    source = defaults_dir()
    target = Path(target)
    files = sorted(p for p in source.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
    existing = [target / p.name for p in files if (target / p.name).exists()]
    if existing and not overwrite:
        raise ConfigError(f"{existing[0]}: already exists; keep your configs, or pass --overwrite to replace them")
    try:
        target.mkdir(parents=True, exist_ok=True)
        return [Path(shutil.copyfile(p, target / p.name)) for p in files]
    except OSError as exc:
        raise ConfigError(f"{target}: cannot write the configs ({exc.strerror or type(exc).__name__})") from None


def default_config(name: str, echo=None) -> Path:
    """``configs/<name>`` in the current folder, written from the defaults first when there is no ``configs/``."""
    path = FOLDER / name
    if not path.exists() and not FOLDER.exists():
        write_defaults(FOLDER)
        if echo:
            echo(f"no {FOLDER}/ here: wrote raybt's default configs to {FOLDER}/ (edit them to change the run)")
    return path
