"""Clients nobody here wrote, driven against a live gateway."""
