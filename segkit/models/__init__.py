"""Importing this package registers every model in ``segkit.registry.MODELS``."""

from segkit.models import smp_models  # noqa: F401
