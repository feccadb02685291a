"""How a failed command is reported: one line on stderr saying why, and the exit code.

Exit codes: 1 the work failed; 2 a usage error (``cli.args.ConfigError``: an option's value, or a
path it names, is unusable; found before any work starts). Tracebacks, vmac's and the ones
Prefect logs for every failed flow and task run, are left out unless ``--debug`` is given.
"""

from __future__ import annotations

import contextlib
import linecache
import logging
from collections.abc import Iterator

from tasks.io.secrets import RedactingFilter, redact_text

# The packages whose exceptions carry vmac's own words (see ``failure_line``).
PROJECT_PACKAGES = {"cli", "flows", "tasks", "vmac_core", "vmac_synthetic", "storage_schemas", "benchmarks"}


def _project(module: str) -> bool:
    return module.split(".")[0] in PROJECT_PACKAGES


# How Prefect's client says it found no API at PREFECT_API_URL.
_UNREACHABLE_API = "Failed to reach API at"


def failure_line(exc: BaseException) -> str:
    """``_failure_line`` with every URL in it redacted (a source's credentials never reach stderr)."""
    return redact_text(_failure_line(exc))


def _failure_line(exc: BaseException) -> str:
    """One line saying why a command failed.

    vmac's own words where it has them: an exception class of vmac's, or one raised by a
    ``raise`` statement in vmac's code (messages that name fields and paths); an OSError in the
    system's words, with the path. Anything else (a library's internals, such as a numpy shape
    error) is named as a defect, with where to find more.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if lines and lines[0].startswith(_UNREACHABLE_API):
        url = lines[0][len(_UNREACHABLE_API):].strip()
        return (f"cannot reach the Prefect API at {url} (PREFECT_API_URL): start that server, or unset "
                "PREFECT_API_URL and vmac records in a local server of its own")
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    module = str(tb.tb_frame.f_globals.get("__name__", "")) if tb is not None else ""
    raised_here = tb is not None and linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno).lstrip().startswith(
        "raise")
    if lines and (_project(type(exc).__module__) or isinstance(exc, OSError) or (_project(module) and raised_here)):
        return lines[0]
    return (f"unexpected {type(exc).__name__} in {module or 'an unknown place'}: a defect in vmac or a library it "
            "uses; run again with --debug for the traceback")


class NoTraceback(logging.Filter):
    """Keeps a log record's message but drops its traceback: Prefect logs every failed flow and
    task run with one, while ``vmac`` prints the reason itself (``--debug`` keeps them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


# The loggers whose records reach Prefect's API (flow and task run logs) or the terminal.
RUN_LOGGERS = ("prefect", "prefect.flow_runs", "prefect.task_runs", "distributed", "vmac.lineage")


@contextlib.contextmanager
def secrets_redacted_in_logs() -> Iterator[None]:
    """``RedactingFilter`` on the loggers of Prefect's flow and task runs, of Dask and of vmac's
    lineage for one command: no URL logged by anyone carries its credentials."""
    loggers = [logging.getLogger(name) for name in RUN_LOGGERS]
    redacting = RedactingFilter()
    for logger in loggers:
        logger.addFilter(redacting)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(redacting)


@contextlib.contextmanager
def tracebacks_left_out() -> Iterator[None]:
    """``NoTraceback`` on the loggers of Prefect's flow and task runs and of Dask, for the
    duration of one command."""
    loggers = [logging.getLogger(name) for name in ("prefect", "prefect.flow_runs", "prefect.task_runs",
                                                     "distributed")]
    quiet = NoTraceback()
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)
