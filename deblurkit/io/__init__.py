"""deblurkit.io."""
