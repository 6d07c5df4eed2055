"""Vitrine: product-image generators and editors served by Triton."""

__version__ = "0.1.0"
