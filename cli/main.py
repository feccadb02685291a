"""The ``vmac`` command: parse (``cli.parsers``), run the subcommand (``cli.commands``), and turn
any failure into one line.

Exit codes: 0 done; 1 the work failed (one line on stderr saying why); 2 a usage error (an
option's value, or a path it names, is unusable), found before any work starts. ``--debug``
adds the traceback, and Prefect's own, which are otherwise left out.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback

from cli.args import ConfigError
from cli.errors import failure_line, secrets_redacted_in_logs, tracebacks_left_out
from cli.lifetime import exit_on_interrupt, start_watchdog
from cli.parsers import build_parser
from cli.prefect_api import command_scope


def main(argv: list[str] | None = None) -> int:
    # GNU OpenMP (torch's CPU threads) reads its wait policy once, when torch loads it: set here,
    # before any command imports torch. PASSIVE: a thread that waits sleeps instead of spinning on
    # a core another process needs (docs/learning.md, "Threads").
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    args = build_parser().parse_args(argv)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(secrets_redacted_in_logs())
            if not args.debug:
                stack.enter_context(tracebacks_left_out())
            # Commands that run flows record them in the user's Prefect API or vmac's local server
            # (cli.prefect_api.record_in_prefect), never in a temporary server of their own.
            stack.enter_context(command_scope())
            return args.func(args)
    except ConfigError as exc:
        for line in exc.lines:
            print(f"vmac {args.command}: {line}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - every failure ends as one line (and the traceback with --debug)
        if args.debug:
            traceback.print_exc()
        print(f"vmac {args.command}: {failure_line(exc)}", file=sys.stderr)
        return 1


def entry() -> None:
    """The ``vmac`` console script (and ``python -m cli.main``): ``main`` under a watchdog that
    stops whatever the command started if it is killed, and ended at once by Ctrl-C (``cli.lifetime``)."""
    start_watchdog()
    exit_on_interrupt(next((arg for arg in sys.argv[1:] if not arg.startswith("-")), "command"))
    sys.exit(main())


if __name__ == "__main__":
    entry()
