"""`make bench`: the gateway measured against a fast fake upstream, in separate processes.

See run.py for the scenarios; results go to tests/bench/results/ (JSON and Markdown).
"""
