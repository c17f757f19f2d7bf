"""Whole numbers: cutting a line into digits and decoding the line model."""
