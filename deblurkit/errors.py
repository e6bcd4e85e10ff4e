"""Errors shown to users: each carries one line naming the argument or file and the problem."""

from __future__ import annotations


class DeblurkitError(Exception):
    """Base class of every error deblurkit reports to a user as one line."""


class ImageError(DeblurkitError, ValueError):
    """An image file or array that cannot be read, written or used."""


class KernelError(DeblurkitError, ValueError):
    """A blur kernel that is not a true convolution kernel (finite, non-negative, sums to 1)."""


class ConfigError(DeblurkitError, ValueError):
    """A configuration file or option with a wrong key or value."""


class WeightsError(DeblurkitError, ValueError):
    """Model weights that are missing, corrupt or do not match their recorded sha256."""
