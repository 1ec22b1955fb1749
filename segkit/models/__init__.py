"""Importing this package registers every model in ``segkit.registry.MODELS``."""

from segkit.models import hrnet, smp_hub, smp_models  # noqa: F401
