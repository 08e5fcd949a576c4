"""Keep secrets out of everything geoproc prints or writes: URLs without user info or tokens.

Why here: a catalog URL or an endpoint is echoed in error messages, logs and run reports,
and users paste URLs like ``https://user:pass@host/stac?token=...``; the message must still
name the endpoint to check, without the credential (OWASP Logging Cheat Sheet: never log
session ids, access tokens, passwords).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

_SECRET_QUERY_KEYS = ("token", "key", "secret", "sig", "signature", "password", "credential")


def redact_url(url: str) -> str:
    """The URL with any user:password removed and secret-looking query values masked."""
    text = str(url)
    parsed = urlparse(text)
    if not parsed.scheme or not parsed.netloc:
        return text
    netloc = parsed.netloc.rsplit("@", 1)[-1]
    if parsed.username or parsed.password:
        netloc = f"***@{netloc}"
    query = parsed.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [
                (k, "***" if any(s in k.lower() for s in _SECRET_QUERY_KEYS) else v)
                for k, v in pairs
            ],
            safe="*",
        )
    return urlunparse(parsed._replace(netloc=netloc, query=query))


_REGISTERED: set[str] = set()
_INSTALLED = False


def register_secrets(values: list[str | None]) -> None:
    """Remember secret values so every later log record is scrubbed of them.

    Why a record factory rather than a handler filter: libraries log request headers at
    DEBUG (requests/pystac-client print the bearer token, botocore the SigV4 credential
    with the key id) to handlers we do not own (the CLI's, Prefect's, pytest's); a
    factory rewrites the record before any handler sees it.
    """
    global _INSTALLED
    _REGISTERED.update(v for v in values if v and len(v) >= 6)
    if _INSTALLED or not _REGISTERED:
        return
    import logging

    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is the caller's problem
            return record
        if any(secret in message for secret in _REGISTERED):
            record.msg, record.args = scrub(message, sorted(_REGISTERED)), ()
        return record

    logging.setLogRecordFactory(factory)
    _INSTALLED = True


def current_secrets() -> list[str]:
    """Secret values configured in this process (settings and the AWS variables)."""
    from geoproc.settings import get_settings

    settings = get_settings()
    return sorted(_REGISTERED | set(settings.secret_values()))


def scrub(text: str, secrets: list[str] | None = None) -> str:
    """`text` with every configured secret value replaced by ``***``."""
    for secret in current_secrets() if secrets is None else secrets:
        text = text.replace(secret, "***")
    return text
