"""Pure decision logic and declarative data for edge: no HTTP, no I/O but packaged data."""
