"""Benchmarks (`geoproc bench NAME`): each module exposes ``register(subparsers)``.

Benchmarks print ratios measured side by side in one run; they are not timed tests.
"""
