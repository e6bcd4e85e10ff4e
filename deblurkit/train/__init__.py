"""deblurkit.train."""
