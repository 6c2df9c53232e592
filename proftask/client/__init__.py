"""The `proftask` commands that talk to a running proftask over its HTTP API (task, analyze)."""
