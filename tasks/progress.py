"""Progress of every long stage (decoding, pre-training, auditing): one terminal progress bar, and
a Prefect progress artifact for the UI.

The bar goes to stderr, so what a command prints on stdout (tables, ``--json``) stays clean to
pipe. Disabled, it costs nothing and ``advance`` does nothing.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator

from prefect.artifacts import create_progress_artifact, update_progress_artifact
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
    """Yield ``advance(n=1, note=None, total=None)``: move the bar by ``n`` ``unit``, show ``note``
    beside it, and (``total``) set its size as it becomes known.

    ``label`` names the work ("decoding"), ``total`` its size in ``unit`` (None or 0: unknown, the
    bar pulses), ``completed`` where it starts (a resumed run). ``transient`` bars vanish when done.
    """
    if not enabled:
        yield lambda n=1, note=None, total=None: None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn(unit), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[note]}", style="dim"))
    with Progress(*columns, console=Console(stderr=True), transient=transient) as progress:
        bar = progress.add_task(label, total=total or None, completed=completed, note="")

        def advance(n: int = 1, note: str | None = None, total: int | None = None) -> None:
            changes = {"note": note} if note is not None else {}
            if total:
                changes["total"] = total
            if changes:
                progress.update(bar, advance=n, **changes)
            else:
                progress.advance(bar, n)

        yield advance


class ProgressArtifact:
    """A Prefect progress artifact (0–100 %, the UI shows it while the run goes on), updated with
    ``artifact(done, total, note)`` at most every ``every_s`` seconds and always at the end.

    Create it inside a Prefect task (the stage's ``tasks.py``); plain calls of the stages' functions
    take no artifact. A failed update is logged once and never stops the work it reports on.
    """

    def __init__(self, key: str, description: str, every_s: float = 5.0):
        self.description = description
        self.every_s = every_s
        self.last = time.monotonic()
        self.failed = self.finished = False
        self.id = create_progress_artifact(0.0, key=key, description=description)

    def __call__(self, done: int, total: int, note: str | None = None) -> None:
        now, final = time.monotonic(), done >= total
        if self.failed or self.finished or (not final and now - self.last < self.every_s):
            return
        self.last, self.finished = now, final
        text = f"{self.description}: {done}/{total}" + (f", {note}" if note else "")
        try:
            update_progress_artifact(self.id, min(100.0, 100.0 * done / max(total, 1)), description=text)
        except Exception as exc:  # noqa: BLE001 - the API may be briefly away; the work goes on
            self.failed = True
            logging.getLogger("vmac.progress").warning("progress artifact %s not updated: %s", self.id, exc)
