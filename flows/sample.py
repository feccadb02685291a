"""sample_flow: write the embedded synthetic sample (no download)."""

from __future__ import annotations

from prefect import flow

from tasks.sample.tasks import write_sample_files


@flow(name="sample_flow")
def sample_flow(out_dir: str, seed: int = 0, small: bool = False) -> dict:
    """Render the seeded synthetic clips and export them as MP4s and DAVIS/VIP/JHMDB folders."""
    return write_sample_files(out_dir, seed, small)
