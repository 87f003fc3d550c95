"""Translation through one neutral model: one adapter per API, to and from `neutral`."""
