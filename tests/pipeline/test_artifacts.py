"""The Prefect progress artifact the long stages publish, on a real (ephemeral) Prefect API: it moves
while the work goes on, at most every few seconds, and always shows the end."""

from __future__ import annotations

import pytest

from tests.pipeline.test_pipeline import _latest_artifacts

pytestmark = pytest.mark.slow


def test_progress_artifact_moves_during_the_work_and_shows_the_end(prefect_harness):
    from prefect import flow

    from tasks.progress import ProgressArtifact

    seen: list[float] = []

    def latest(key: str) -> float:
        return _latest_artifacts([key])[key].data

    @flow
    def counting() -> None:
        every = ProgressArtifact("test-progress", "counting", every_s=0)
        for done in (1, 5, 10):
            every(done, 10, f"at {done}")
            seen.append(latest("test-progress"))
        throttled = ProgressArtifact("test-progress-throttled", "counting", every_s=3600)
        throttled(5, 10)
        seen.append(latest("test-progress-throttled"))  # too soon after the last update: not sent
        throttled(10, 10)
        seen.append(latest("test-progress-throttled"))  # the end always is

    counting()
    assert seen == [10, 50, 100, 0, 100]
