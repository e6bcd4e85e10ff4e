"""deblurkit.models."""
