"""URLs that carry credentials: redacted wherever they are written, revealed only where a source is read.

A source URL may hold a secret: a password or token in its userinfo (``https://user:pass@host/clip.mp4``,
``ftp://user:pass@host/``) or a signed query (``X-Amz-Signature=…``, ``sig=…``, ``token=…``). vmac
writes sources into catalog records, lineage records and OpenLineage events, summaries, logs and
Prefect's flow parameters and artifacts; ``redact`` is the one function that takes the secret out
of a URL before any of those, and ``redact_text`` applies it to every URL inside a message.

The URL as given is kept in this process's memory only (``keep_out``, which the CLI calls on every
location it is given), keyed by its redacted form, and ``reveal`` gives it back where a source is
opened (``tasks.io.uris.filesystem`` and ``open_uri``). Dask workers get the URLs they read with
their unit of work (``given``/``remember``), never through a file. A record read back later names
only the redacted URL: ``reader_uri`` is the URL without the masked parts, which the user's own
fsspec configuration (``~/.config/fsspec``, ``~/.netrc`` with ``trust_env``) may open
(docs/security.md, "Secrets").
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

MASK = "***"
# Query parameters whose value is a credential: signatures, tokens, keys, passwords (case-insensitive,
# whole name or its last part after - _ or .): X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token,
# X-Goog-Signature, Signature, sig, token, access_token, key, api_key, password, secret, ...
# Names are compared in snake case (camelCase split: accessToken -> access_token, secretKey ->
# secret_key) with leading and trailing underscores trimmed (Akamai's ``__token__``); Akamai's
# ``hdnts``/``hdnea`` and Azure's ``AccountKey``/``SharedAccessSignature`` are named too.
_SECRET_KEY = re.compile(
    r"(?:^|[-_.])(?:sig|signature|token|key|apikey|secret|password|passwd|pwd|credential|auth|authorization"
    r"|hdnts|hdnea|hmac)s?$")
# A value that is a JSON Web Token (header.payload.signature, base64url, the header starting {" =
# eyJ) is a bearer credential whatever the parameter's name or wherever it appears.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# key=value in free text or a connection string (``AccountKey=…;``, ``password=…``): a secret key's
# value. Only where a pair starts (the text's start, a space, ; , & a quote or a bracket), never
# inside a path: a local folder named ``camera_key=3`` is a name, and records keep it as it is.
_PAIR_IN_TEXT = re.compile(r"(?<![^\s;,&'\"(\[{])([A-Za-z_][A-Za-z0-9_.-]*)=([^\s;&'\"<>,)]+)")
# A URL inside free text: a scheme, ://, and everything up to white space or a quote.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`|]+")

# Redacted URL (or redacted scheme://authority) → the URL as given; this process's memory only.
_GIVEN: dict[str, str] = {}


def _secret_key(name: str) -> bool:
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", unquote(name)).lower().strip("_")
    return bool(_SECRET_KEY.search(snake))


def _redact_query(query: str) -> str:
    """Each ``name=value`` of a query (separated by ``&`` or, Azure-style, ``;``) with a secret
    name's value masked, and any JSON Web Token masked."""
    parts = re.split(r"([&;])", query)
    for i in range(0, len(parts), 2):
        name, eq, _ = parts[i].partition("=")
        if eq and _secret_key(name):
            parts[i] = f"{name}={MASK}"
    return _JWT.sub(MASK, "".join(parts))


def _split(uri: str) -> tuple[str, str, str, str] | None:
    """(scheme://, userinfo, host[:port], rest) of a URL; None for a local path."""
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)(.*)", uri, re.S)
    if not match or match[1].lower() == "file://":
        return None
    scheme, authority, rest = match.groups()
    userinfo, at, host = authority.rpartition("@")
    return scheme, userinfo if at else "", host, rest


def _redacted_userinfo(userinfo: str) -> str:
    """``user:***`` when there is a password; ``***`` when there is only a user name (a token)."""
    user, colon, _ = userinfo.partition(":")
    return f"{user}:{MASK}" if colon else MASK


def redact(uri: str) -> str:
    """``uri`` with its credentials masked: the password of its userinfo (the whole userinfo when
    it is one name, often a token) and the value of every signed-query parameter (``_SECRET_KEY``)
    become ``***``. Local paths and URLs without credentials come back unchanged; redacting twice
    changes nothing. An fsspec chained URL (``simplecache::s3://key:secret@bucket/x``) has each
    of its links redacted; a JSON Web Token anywhere in it is masked."""
    if "::" in uri:
        return "::".join(redact(link) for link in uri.split("::"))
    parts = _split(uri)
    if parts is None:
        return _JWT.sub(MASK, uri) if "://" in uri else uri
    scheme, userinfo, host, rest = parts
    if userinfo:
        shown = userinfo if userinfo == MASK or userinfo.endswith(f":{MASK}") else _redacted_userinfo(userinfo)
        authority = f"{shown}@{host}"
    else:
        authority = host
    rest, h, fragment = rest.partition("#")
    path, q, query = rest.partition("?")
    # A fragment may carry a token too (OAuth's implicit flow: #access_token=…).
    rest = _JWT.sub(MASK, path) + (f"?{_redact_query(query)}" if q else "") + (h + _redact_query(fragment) if h else "")
    return f"{scheme}{authority}{rest}"


def redact_text(text: str) -> str:
    """``text`` with every URL in it redacted (error messages, log lines), and outside URLs every
    ``name=value`` whose name is a secret's (a connection string's ``AccountKey=…``) and every JSON
    Web Token masked."""
    if "://" in text:
        text = _URL_IN_TEXT.sub(lambda m: redact(m[0]), text)
    if "=" in text:
        text = _PAIR_IN_TEXT.sub(lambda m: f"{m[1]}={MASK}" if _secret_key(m[1]) else m[0], text)
    return _JWT.sub(MASK, text) if "eyJ" in text else text


def redact_json(value):
    """A JSON-like value (dicts, lists, strings, numbers) with every URL in its strings redacted:
    what a record or an event carries of a config, a reason, a facet."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: redact_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_json(item) for item in value]
    return value


def has_secret(uri: str) -> bool:
    return redact(uri) != uri


def keep_out(uri: str) -> str:
    """The redacted form of ``uri``, remembering the URL as given (for ``reveal``) when it holds a
    secret. The CLI passes every location it is given through this before building a config."""
    shown = redact(uri)
    if shown != uri:
        _GIVEN[shown] = uri
        scheme, userinfo, host, _ = _split(uri) or ("", "", "", "")
        if userinfo:
            # Paths below the same authority (a folder, a glob, frames of a remote folder) use its credentials.
            _GIVEN[f"{scheme}{_redacted_userinfo(userinfo)}@{host}"] = f"{scheme}{userinfo}@{host}"
    return shown


def reveal(uri: str) -> str:
    """The URL as given for the redacted ``uri`` (or for a path below a redacted authority this
    process was given); ``uri`` itself otherwise."""
    if uri in _GIVEN:
        return _GIVEN[uri]
    parts = _split(uri)
    if parts is None or not parts[1]:
        return uri
    scheme, userinfo, host, rest = parts
    real = _GIVEN.get(f"{scheme}{userinfo}@{host}")
    return f"{real}{rest}" if real else uri


def given() -> dict[str, str]:
    """Every URL this process was given with a secret, by its redacted form (for a Dask worker's
    ``remember``); in memory only."""
    return dict(_GIVEN)


def remember(urls: dict[str, str]) -> None:
    """On a Dask worker: the URLs of ``given`` its unit of work reads."""
    _GIVEN.update(urls)


def reader_uri(uri: str) -> str:
    """A URL read back from a record, with its masked parts left out (the userinfo, the masked
    query parameters), or revealed when this process was given it: what the user's own fsspec
    configuration can open again."""
    if reveal(uri) != uri:
        return reveal(uri)
    parts = _split(uri)
    if parts is None:
        return uri
    scheme, userinfo, host, rest = parts
    rest, h, fragment = rest.partition("#")
    path, q, query = rest.partition("?")
    if q:
        kept = [p for p in re.split(r"[&;]", query) if not p.endswith(f"={MASK}")]
        rest = path + (f"?{'&'.join(kept)}" if kept else "")
    rest += h + fragment
    return f"{scheme}{'' if MASK in userinfo else (userinfo + '@' if userinfo else '')}{host}{rest}"


def was_redacted(uri: str) -> bool:
    """True when a recorded URI had credentials taken out."""
    parts = _split(uri)
    return parts is not None and (MASK in parts[1] or f"={MASK}" in parts[3])


class RedactingFilter(logging.Filter):
    """Redacts every URL in a log record's message and arguments (on Prefect's run loggers, so
    nothing logged to the API carries a credential, whoever logged it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_text(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact_text(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True
