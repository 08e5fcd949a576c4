"""Errors users can act on: every message names the argument or setting to change.

Each class carries its exit code; the CLI prints the message without a traceback (the
mapping of Python's own exceptions onto these classes lives in `geoproc.cli`):

| exit | class | what happened |
| --- | --- | --- |
| 1 | `GeoprocError` (catalog, no data, model, credentials, lock) | a runtime problem the message explains |
| 2 | `UsageError` | a bad argument: the message names it; nothing was written |
| 3 | `MissingFileError` | a local file geoproc needs is not there: the message names the path |
| 4 | `SchemaError` | a JSON document does not match its schema, or the schema is not available |
| 5 | `StorageFailure` | reading or writing the output store failed: local disk (path named) or S3 (endpoint named) |
| 6 | `NetworkError` | a remote server (catalog, asset host) kept failing after retries: endpoint named |
| 70 | `InternalError` | a bug in geoproc: not the user's input; the traceback is saved for a report |
| 130 | (interrupted) | Ctrl-C or SIGTERM |
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


class MissingFileError(GeoprocError):
    """A local file geoproc needs does not exist (an input, a packaged resource); names the path."""

    exit_code = 3


class SchemaError(GeoprocError):
    """A document does not match its JSON Schema, or the schema it names is not available."""

    exit_code = 4


class StorageFailure(GeoprocError):
    """Reading or writing a store failed after the client's retries (disk full, S3 down).

    Local failures name the path, S3 failures the endpoint; only these say "check the endpoint".
    """

    exit_code = 5


class NetworkError(GeoprocError):
    """A remote server could not be reached, or kept failing, after retries; names the endpoint."""

    exit_code = 6


class EndpointUnavailableError(NetworkError):
    """A server kept failing with transient errors (5xx, 429, resets, timeouts) after retries.

    The message names the endpoint; flows may retry the whole step later.
    """


class InternalError(GeoprocError):
    """An unexpected exception: a bug in geoproc, not a problem with the user's input."""

    exit_code = 70
