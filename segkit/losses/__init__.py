"""Importing this package registers every loss in ``segkit.registry.LOSSES``."""

from segkit.losses import cross_entropy  # noqa: F401
