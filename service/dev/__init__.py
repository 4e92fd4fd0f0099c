"""`make run`'s tooling: a private Valkey server and the process runner. Not shipped code paths."""
