"""deblurkit.deconv."""
