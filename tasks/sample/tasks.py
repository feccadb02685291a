"""Prefect tasks of the sample stage."""

from __future__ import annotations

from prefect import task

from tasks.sample.write import write_sample


@task(name="write_sample")
def write_sample_files(out_dir: str, seed: int, small: bool) -> dict:
    """Render the seeded clips and write them with their DAVIS/VIP/JHMDB exports; the manifest."""
    return write_sample(out_dir, seed=seed, small=small)
