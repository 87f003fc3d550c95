"""`make bench-peers`: the bare relay, edge, LiteLLM proxy and the Portkey gateway in one run."""
