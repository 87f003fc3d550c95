"""Authentication: API keys, JWTs and the bootstrap admin token."""
