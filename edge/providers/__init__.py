"""Providers served in-process."""
