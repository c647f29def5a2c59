"""Database URLs: the default, the environment override, and masking passwords."""

from __future__ import annotations

import os
import re

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_URL = "sqlite:///nasfcn.db"
ENV_VAR = "NASFCN_DB"

_PASSWORD_IN_TEXT = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@")


class DatabaseURLError(ValueError):
    """A database URL that SQLAlchemy cannot parse (the message never shows a password)."""


def resolve_url(url: str | None = None) -> str:
    """``url`` if given, else ``$NASFCN_DB``, else ``sqlite:///nasfcn.db`` in the working directory."""
    chosen = url or os.environ.get(ENV_VAR) or DEFAULT_URL
    try:
        make_url(chosen)
    except ArgumentError:
        raise DatabaseURLError(
            f"cannot parse database URL {mask_url(chosen)!r}; expected e.g. sqlite:///nasfcn.db "
            "or postgresql+psycopg://user:password@host:5432/dbname"
        ) from None
    return chosen


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***, safe for logs and error messages."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return mask_text(url)
    if parsed.password is None:
        return parsed.render_as_string(hide_password=False)
    return parsed.render_as_string(hide_password=True)


def mask_text(text: str) -> str:
    """Mask every ``scheme://user:password@`` in free text (error messages, tracebacks)."""
    return _PASSWORD_IN_TEXT.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
