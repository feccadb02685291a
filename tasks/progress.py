"""One terminal progress bar for every long stage (decoding, pre-training, auditing).

The bar goes to stderr, so what a command prints on stdout (tables, ``--json``) stays clean to
pipe. Disabled, it costs nothing and ``advance`` does nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextlib.contextmanager
def progress_bar(label: str, total: int | None, unit: str, enabled: bool = True, completed: int = 0,
                 transient: bool = False) -> Iterator[Callable[..., None]]:
    """Yield ``advance(n=1, note=None)``: move the bar by ``n`` ``unit`` and show ``note`` beside it.

    ``label`` names the work ("decoding"), ``total`` its size in ``unit`` (None or 0: unknown, the
    bar pulses), ``completed`` where it starts (a resumed run). ``transient`` bars vanish when done.
    """
    if not enabled:
        yield lambda n=1, note=None: None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn(unit), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[note]}", style="dim"))
    with Progress(*columns, console=Console(stderr=True), transient=transient) as progress:
        bar = progress.add_task(label, total=total or None, completed=completed, note="")

        def advance(n: int = 1, note: str | None = None) -> None:
            if note is None:
                progress.advance(bar, n)
            else:
                progress.update(bar, advance=n, note=note)

        yield advance
