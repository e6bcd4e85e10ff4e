"""deblurkit.blur."""
