"""argparse ``type=`` checks shared by the commands: a bad value is the parser's one-line error
naming its flag (``error: raybt run: argument --timeframe: not a timeframe: '5x' ...``)."""

from __future__ import annotations

import argparse

from raybt.errors import ConfigError


def timeframe_arg(text: str) -> str:
    """A timeframe (``5m``, ``1h``, ``1d`` ...)."""
    from raybt.config.common import check_timeframe

    try:
        return check_timeframe(text, "timeframe")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("timeframe: ")) from None


def address_arg(text: str) -> str:
    """A Ray cluster address: not empty (leave the flag out for an embedded local Ray)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty address (leave --address out for an embedded local Ray)")
    return text.strip()
