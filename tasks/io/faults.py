"""Whose fault a failure is: the input's, or the machine's (disk, permissions, network).

A source that is not a video, is corrupt or is truncated fails the same way every time: ingest
records it ``failed`` with a one-line reason and later runs skip it. A full disk, a folder the
process may not write, or a remote store that times out says nothing about the source: ingest
records nothing for it, the run fails with a one-line reason, and the next run retries it.
*Transient* faults (timeouts, dropped connections) are worth retrying within the run; the rest
need a person first (free space, fix permissions).
"""

from __future__ import annotations

import errno

from tasks.io.secrets import redact_text

# Network faults: a retry a few seconds later may succeed.
TRANSIENT_ERRNOS = frozenset({
    errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.EPIPE,
    errno.ENETDOWN, errno.ENETUNREACH, errno.ENETRESET, errno.EHOSTDOWN, errno.EHOSTUNREACH, errno.EAGAIN,
})
# The machine's state: space, quotas, permissions, read-only mounts, failing devices, exhausted limits.
ENVIRONMENT_ERRNOS = frozenset({
    errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO,
    errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ESTALE,
}) | TRANSIENT_ERRNOS


def _chain(exc: BaseException):
    """``exc`` and the exceptions it was raised from or while handling, innermost last."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_transient(exc: BaseException) -> bool:
    """True for a timeout or a dropped connection anywhere in ``exc``'s chain.

    Client libraries of remote stores raise their own timeout classes (aiohttp, botocore); any
    class whose name says Timeout counts, so none of them has to be imported here.
    """
    for item in _chain(exc):
        if isinstance(item, (TimeoutError, ConnectionError)):
            return True
        if isinstance(item, OSError) and item.errno in TRANSIENT_ERRNOS:
            return True
        if any("Timeout" in cls.__name__ for cls in type(item).__mro__):
            return True
    return False


def is_environmental(exc: BaseException) -> bool:
    """True when the machine, not the input, failed: no space, no permission, a read-only or
    failing device, exhausted memory or file handles, or a transient network fault."""
    if is_transient(exc):
        return True
    return any(isinstance(item, MemoryError) or (isinstance(item, OSError) and item.errno in ENVIRONMENT_ERRNOS)
               for item in _chain(exc))


def reason_of(exc: BaseException) -> str:
    """One line for a person: an OSError's own words and the path it names; otherwise the first
    line of the message (the exception's class when it has none), at most 300 characters. URLs
    in it are redacted (``tasks.io.secrets``): a source's credentials never reach a record."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return redact_text(f"{exc.strerror}{where}")[:300]
    text = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return redact_text(text[0] if text else exc.__class__.__name__)[:300]


def environment_reason(exc: BaseException, where: str | None = None) -> str:
    """``reason_of`` for an environmental fault: the first OSError in the chain that says what
    happened (a library may wrap the disk's own words in its own message), and ``where`` it
    happened when the error names no file; a bare timeout says it timed out."""
    for item in _chain(exc):
        if isinstance(item, OSError) and item.strerror:
            return reason_of(item) if item.filename or not where else redact_text(f"{item.strerror} ({where})")
    reason = reason_of(exc)
    if is_transient(exc) and "time" not in reason.lower():
        reason = f"timed out ({reason})"
    return redact_text(f"{reason} ({where})" if where else reason)
