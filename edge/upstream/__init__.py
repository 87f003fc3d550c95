"""Calling providers: one pooled HTTP client, timeouts, and header and error handling."""
