"""deblurkit.infer."""
