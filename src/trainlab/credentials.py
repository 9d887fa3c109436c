"""Credentials in store URLs: shown nowhere, whatever prints, stores or reports a URL.

A shared store's URL may carry a password (``postgresql+psycopg://alice:s3cret@host/db``, or
``?password=s3cret`` in its query string). Every place trainlab shows a URL — error messages,
tables, report subtitles — calls :func:`display_url`; text that may quote a URL or a libpq
connection string (a database driver's error) goes through :func:`redact`. The URL itself
travels to worker processes only through a pipe (the process pool's call queue), never on
their command line.

A URL need not carry the password at all: libpq reads ``PGPASSWORD``, ``~/.pgpass`` and
``PGSERVICE`` (see SECURITY.md).

Example::

    >>> display_url("postgresql+psycopg://alice:s3cret@db.example.org/lab?sslmode=require")
    'postgresql+psycopg://alice:***@db.example.org/lab?sslmode=require'
    >>> redact("password authentication failed: password=s3cret host=db", "postgresql://a:s3cret@db/x")
    'password authentication failed: password=*** host=db'
"""

from __future__ import annotations

import os
import re
from urllib.parse import quote, quote_plus

MASK = "***"

# Query-string / connection-string keys whose value is a secret (libpq's password and
# sslpassword, and the usual token names of HTTP-style URLs).
_SECRET_KEY = re.compile(r"pass(word|wd)?|pwd|secret|token|api_?key|access_?key", re.IGNORECASE)
# scheme://user:PASSWORD@host — up to the last '@' before the host, so that a password with an
# unencoded '@' (which SQLAlchemy would split, taking the rest for the host) is masked whole.
_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)([^\s@]*(?:@[^\s@/?#]*(?=@))*)(@)")
# key=VALUE in a query string (?password=…&) or a libpq connection string (password=… or '…').
_KEY_VALUE = re.compile(
    r"(?P<key>(?<![A-Za-z0-9_])[A-Za-z_]*(?:pass(?:word|wd)?|pwd|secret|token|api_?key|access_?key)[A-Za-z_]*\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*'|[^\s&;'\"]+)",
    re.IGNORECASE,
)


def is_secret_key(key: str) -> bool:
    """True for a query key that holds a credential (``password``, ``sslpassword``, ``token``…)."""
    return _SECRET_KEY.search(key) is not None


def display_url(url: str | os.PathLike) -> str:
    """``url`` as it may be shown: the password and every secret query value replaced by ``***``.

    SQLAlchemy's ``URL.render_as_string(hide_password=True)`` for what it parses, and a
    pattern for what it cannot (a malformed URL is still masked). A plain path is returned as is.
    """
    text = os.fspath(url)
    if "://" not in text:
        return text
    import sqlalchemy as sa

    try:
        parsed = sa.engine.make_url(text)
    except sa.exc.ArgumentError:
        return redact(text)
    if ambiguous_password(text):
        return redact(text)
    if parsed.password is None and not any(is_secret_key(k) for k in parsed.query):
        return text  # nothing to hide: show the URL as the user wrote it
    query = {k: MASK if is_secret_key(k) else v for k, v in parsed.query.items()}
    return parsed.set(query=query).render_as_string(hide_password=True).replace(quote(MASK, safe=""), MASK)


def ambiguous_password(url: str) -> bool:
    """True when the password holds an unencoded '@': SQLAlchemy would cut it there and take
    the rest for the host name (which a connection error would then print)."""
    return any("@" in m.group(2) for m in _USERINFO.finditer(url))


def url_secrets(url: str | os.PathLike | None) -> list[str]:
    """The credentials written in ``url``: its password and its secret query values."""
    if url is None or "://" not in os.fspath(url):
        return []
    import sqlalchemy as sa

    text = os.fspath(url)
    found = [m.group(2) for m in _USERINFO.finditer(text) if m.group(2)]
    try:
        parsed = sa.engine.make_url(text)
    except sa.exc.ArgumentError:
        return found
    found += [parsed.password] if parsed.password else []
    for key, value in parsed.query.items():
        if is_secret_key(key):
            found += [value] if isinstance(value, str) else list(value)
    return list(dict.fromkeys(str(s) for s in found if s))


def redact(text: str, url: str | os.PathLike | None = None) -> str:
    """``text`` with credentials masked: the URL ``url`` (if given) and its secrets wherever they
    appear, any ``scheme://user:password@`` and any ``password=…`` pair (query or libpq string)."""
    if url is not None and "://" in os.fspath(url):
        raw = os.fspath(url)
        text = text.replace(raw, display_url(raw))
        for secret in url_secrets(raw):
            for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
                # Whole tokens only: a one-letter password must not mask that letter in every word.
                text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(form)}(?![A-Za-z0-9])", MASK, text)
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", text)
    return _KEY_VALUE.sub(lambda m: f"{m.group('key')}{MASK}", text)


def check_url(url: str) -> str:
    """``url`` unchanged, or a :class:`~trainlab.errors.ConfigError` when its password holds an
    unencoded '@' (it would connect to a wrong host named after the rest of the password)."""
    if ambiguous_password(url):
        from trainlab.errors import ConfigError

        raise ConfigError(
            f"store URL '{display_url(url)}': the password contains '@'; percent-encode it as %40, "
            "or keep it out of the URL (PGPASSWORD or ~/.pgpass, see SECURITY.md)"
        )
    return url
