"""sample_flow: write the embedded synthetic sample (no download)."""

from __future__ import annotations

from prefect import flow, task

from tasks.sample import write_sample


@task(name="write_sample")
def write_sample_task(out_dir: str, seed: int, small: bool) -> dict:
    return write_sample(out_dir, seed=seed, small=small)


@flow(name="sample_flow")
def sample_flow(out_dir: str, seed: int = 0, small: bool = False) -> dict:
    """Render the seeded synthetic clips and export them as MP4s and DAVIS/VIP/JHMDB folders."""
    return write_sample_task(out_dir, seed, small)
