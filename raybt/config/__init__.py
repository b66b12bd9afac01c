"""Configuration, in one place: every file parsed and validated once, at the edge, into frozen objects.

* :mod:`raybt.config.common`: reading JSON/YAML, checking keys, the one
  suggestion helper (:func:`closest_name`), the preferences;
* :mod:`raybt.config.params`: one asset's strategy and broker parameters;
* :mod:`raybt.config.universe`: the asset config file (``assets_config_*.json``);
* :mod:`raybt.config.portfolio`: the portfolio config (``portfolio_*.yaml``);
* :mod:`raybt.config.grid`: the optimiser's grid (``grid.yaml``);
* :mod:`raybt.config.sweep`: a sweep (``sweep.yaml``) and its points;
* :mod:`raybt.config.defaults`: the configs shipped inside the package (``raybt init``).

The rest of raybt receives these typed objects and never re-checks them.
"""

from raybt.config.common import PREFERENCES, check_keys, check_timeframe, closest_name, load_document, resolve_path
from raybt.config.params import PARAMETERS, min_bars, parse_set_options, validate_params
from raybt.config.portfolio import PortfolioConfig, load_portfolio_config, portfolio_config_from_dict
from raybt.config.universe import (
    AssetConfig,
    AssetUniverse,
    SyntheticSpec,
    check_timestamp_format,
    load_asset_universe,
)

__all__ = [
    "PARAMETERS", "PREFERENCES", "AssetConfig", "AssetUniverse", "PortfolioConfig", "SyntheticSpec",
    "check_keys", "check_timeframe", "check_timestamp_format", "closest_name", "load_asset_universe",
    "load_document", "load_portfolio_config", "min_bars", "parse_set_options", "portfolio_config_from_dict",
    "resolve_path", "validate_params",
]
