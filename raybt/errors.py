"""User-facing error types.

Every error a user can cause (bad data file, bad config, bad parameter,
unreachable cluster) is raised as a :class:`RaybtError` subclass whose message
is ONE line naming the file, the field/column/key and the row where that
applies. The CLI prints ``error: <message>`` and exits with status 2, with no
traceback. Anything else escaping is a bug in raybt.
"""


class RaybtError(Exception):
    """Base class of user errors (message: one clear line)."""


class DataError(RaybtError):
    """A bars file is missing, empty or malformed."""


class ConfigError(RaybtError):
    """A config file, a ``--set`` value or a parameter is invalid."""


class ClusterError(RaybtError):
    """The Ray cluster cannot be reached or used."""


class RaybtWarning(UserWarning):
    """Data or results that run but say little (a constant price, no trades): issued by
    ``PortfolioBacktester.run`` and kept in ``result.provenance["warnings"]``; the CLI prints each as
    ``warning: ...``."""
