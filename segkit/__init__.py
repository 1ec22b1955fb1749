"""segkit: semantic segmentation research kit."""

__version__ = "0.1.0"
