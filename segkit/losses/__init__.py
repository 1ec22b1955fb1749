"""Importing this package registers every loss in ``segkit.registry.LOSSES``."""

from segkit.losses import combo, cross_entropy, dice, focal, lovasz  # noqa: F401
