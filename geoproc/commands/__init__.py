"""CLI command groups; each module exposes ``register(subparsers)`` (see `geoproc.cli`)."""
