"""Database URLs: the default, the environment override, and masking credentials."""

from __future__ import annotations

import os
import re
from urllib.parse import quote, unquote

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from nasfcn.errors import NasfcnError

DEFAULT_URL = "sqlite:///nasfcn.db"
ENV_VAR = "NASFCN_DB"
MASK = "***"

#: ``scheme://user:password@``; a password holding a bare ``@`` ends at the last ``@`` before the host.
#: The password stops at the next ``://``, so a text of many URLs is read once (not once per URL).
_USERINFO = re.compile(
    r"(?<![\w+.-])(?P<head>[a-zA-Z][\w+.-]*://[^:/@\s]*:)"
    r"(?P<pw>(?:[^@\s:]|:(?!//))*(?:@[^@\s/]*)*?)@(?=[^@\s]*(?:[\s/?]|$))"
)
#: A quote inside a value; one followed by a space, ``,;)`` or the end closes the text quoted around it.
_INNER_QUOTE = r"['\"](?=[^\s,;)'\"])"
#: ``?key=value`` / ``&key=value`` / ``;KEY=value`` (ODBC): the value runs to the next ``&``, or
#: to a ``?`` or ``;`` that starts another ``key=``.
_QUERY_PARAM = re.compile(
    r"(?P<head>[?&;](?P<key>[^=&\s?;'\"]+)=)"
    r"(?P<value>(?:[^&\s'\"?;]|[?;](?![^=&\s?;'\"]+=)|" + _INNER_QUOTE + r")*)"
)
#: How deep percent-encoded values are decoded to look for credentials inside them.
_MAX_DECODING = 3
#: libpq ``key=value`` / ``key = 'quoted \' value'`` connection strings (also ``PGPASSWORD=...``).
_KEYWORD = re.compile(
    r"(?<![\w%.&?;/-])(?P<head>(?P<key>[A-Za-z_][\w.-]*)\s*=\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*(?:'|$)|(?:[^\s'\"\\]|\\.|" + _INNER_QUOTE + r")+)"
)
#: ``'password': 'value'`` in a dict's repr (connection arguments in driver messages).
_MAPPING = re.compile(
    r"(?P<head>(?P<q>['\"])(?P<key>[^'\"]+)(?P=q)\s*:\s*)(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
)
#: Keys whose value is a credential: libpq's password, sslpassword, oauth_client_secret,
#: scram_client_key and scram_server_key, MySQL's passwd, ODBC's PWD, any *secret* or *token*.
#: Not passfile, sslkey or sslcert: paths, which a user needs to see to fix a connection.
_SECRET_KEY = re.compile(r"pass(?:word|wd)?$|password|passwd|^pwd$|secret|token|(?:^|_)key$|apikey", re.I)


class DatabaseURLError(NasfcnError, ValueError):
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
    """The URL with every credential replaced by ***, safe for logs, errors, HTML and stored config.

    Masks the password of ``user:password@``, secret query parameters (``?password=``,
    ``sslpassword=``, percent-encoded keys too) and credentials nested in other parameters
    (``options=... password=...``). What the text masking misses, SQLAlchemy's own parse of
    the result catches: then the URL is rebuilt from its parsed parts.
    """
    masked = mask_text(url)
    try:
        parsed = make_url(masked)
    except ArgumentError:
        return masked
    return _rebuilt(parsed) if _holds_secret(parsed) else masked


def mask_text(text: str) -> str:
    """Mask every credential in free text: URLs, libpq ``key=value`` strings, driver messages."""
    return _masked(text, 0)


def _masked(text: str, decodings: int) -> str:
    text = _USERINFO.sub(lambda m: f"{m['head']}{MASK}@", text)
    text = _QUERY_PARAM.sub(lambda m: _masked_param(m, decodings), text)
    text = _KEYWORD.sub(lambda m: f"{m['head']}{MASK}" if _is_secret_key(m["key"]) else m[0], text)
    return _MAPPING.sub(_masked_mapping, text)


def _is_secret_key(key: str) -> bool:
    """Whether a connection parameter named ``key`` (percent-encoded or not) holds a credential."""
    return bool(_SECRET_KEY.search(unquote(key).strip()))


def _masked_param(match: re.Match[str], decodings: int) -> str:
    """One query parameter: a secret's value masked, an encoded one decoded and searched for more."""
    if _is_secret_key(match["key"]):
        return f"{match['head']}{MASK}"
    raw = match["value"]
    value = unquote(raw.replace("+", " "))
    if value == raw or decodings >= _MAX_DECODING:  # plain text was searched with the rest
        return match[0]
    inner = _masked(value, decodings + 1)
    if inner == value:
        return match[0]
    return f"{match['head']}{quote(inner, safe=MASK + ''.join(set(raw) - set('%+')))}"  # encoded as it was


def _masked_mapping(match: re.Match[str]) -> str:
    if not _is_secret_key(match["key"]):
        return match[0]
    quote_mark = match["value"][0]
    return f"{match['head']}{quote_mark}{MASK}{quote_mark}"


def _holds_secret(parsed: URL) -> bool:
    """A password, or a query value holding a credential, that is not just the mask."""
    if parsed.password not in (None, MASK):
        return True
    for key, values in parsed.query.items():
        for value in (values,) if isinstance(values, str) else values:
            if (_is_secret_key(key) and value != MASK) or mask_text(value) != value:
                return True
    return False


def _rebuilt(parsed: URL) -> str:
    """The URL from its parsed parts, every credential masked (the fallback of ``mask_url``)."""
    query: dict[str, str | tuple[str, ...]] = {}
    for key, values in parsed.query.items():
        items = (values,) if isinstance(values, str) else values
        masked = tuple(MASK if _is_secret_key(key) else mask_text(value) for value in items)
        query[key] = masked[0] if isinstance(values, str) else masked
    password = None if parsed.password is None else MASK
    rendered = parsed.set(password=password, query=query).render_as_string(hide_password=False)
    return rendered.replace(quote(MASK, safe=""), MASK)
