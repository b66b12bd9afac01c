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
