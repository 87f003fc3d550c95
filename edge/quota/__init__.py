"""Quota admission and settlement."""
