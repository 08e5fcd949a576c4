"""Errors users can act on: every message names the argument or setting to change.

The CLI maps `UsageError` to exit code 2 and every other `GeoprocError` to exit code 1,
and prints the message without a traceback (the table lives in `geoproc.cli`).
"""

from __future__ import annotations


class GeoprocError(Exception):
    """Base class: a problem the user can fix; the message says how."""

    exit_code: int = 1


class UsageError(GeoprocError):
    """A bad argument or option value (exit code 2)."""

    exit_code = 2


class InvalidAOIError(UsageError):
    """The area of interest cannot be parsed or is not a usable polygon."""


class InvalidDateError(UsageError):
    """A date or date range is malformed or reversed."""


class UnknownNameError(UsageError):
    """A product, collection, model or other name is not one geoproc knows."""


class StorageURLError(UsageError):
    """An output or input URL has a scheme or form geoproc cannot use."""


class CredentialsError(GeoprocError):
    """A credential needed for a store or catalog is missing or refused."""


class CatalogError(GeoprocError):
    """A STAC catalog does not answer, or answers with something unusable."""


class StoreError(GeoprocError):
    """A store cannot be read or written (locked, corrupt, incompatible layout)."""


class StoreLockedError(StoreError):
    """Another process holds the write lock of a store."""


class NoDataError(GeoprocError):
    """The search or the inputs hold no usable data for the request."""


class ModelError(GeoprocError):
    """A model or its weights cannot be loaded (unknown, tampered, incompatible)."""


class UntrustedHrefError(CatalogError):
    """A catalog's asset href is outside the allow-list of schemes and hosts (not read)."""


class EndpointUnavailableError(GeoprocError):
    """A server kept failing with transient errors (5xx, 429, resets, timeouts) after retries.

    The message names the endpoint; flows may retry the whole step later.
    """
