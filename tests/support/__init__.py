"""Test support: real redis-server processes, a scripted fake upstream, live gateways."""
