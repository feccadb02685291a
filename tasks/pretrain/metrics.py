"""``metrics.jsonl``: one JSON object per optimiser step, appended by rank 0.

Keys: step, epoch, loss, loss_online, loss_target, loss_consistency, lr, momentum, pairs_per_s,
data_wait_s, step_s; cpu_s and wall_s, the run's cumulative CPU seconds (this process and its
loader workers, ``tasks.pretrain.world.RunClock``) and wall seconds of training so far, carried
across resumes; threads (torch's CPU threads) and omp_wait_policy (OMP_WAIT_POLICY as the process
started, "default" when unset); and replica_checksum under DDP with ``check_replicas``.
"""

from __future__ import annotations

import json
from pathlib import Path

from tasks.io.files import open_append, write_atomic
from tasks.io.metrics_file import metric_rows


def read_metrics(path: Path, up_to_step: int | None = None) -> list[dict]:
    """The rows of ``path`` (``metric_rows``), those after ``up_to_step`` left out."""
    return [r for r in metric_rows(path) if up_to_step is None or r["step"] <= up_to_step]


def truncate_metrics(path: Path, step: int) -> None:
    """Keep only the rows up to ``step``: a resumed run replays the steps after its checkpoint."""
    write_atomic(path, "".join(json.dumps(r) + "\n" for r in read_metrics(path, up_to_step=step)))


def append_metrics(path: Path, row: dict) -> None:
    with open_append(path) as handle:
        handle.write(json.dumps(row) + "\n")


def describe(row: dict, total_steps: int) -> str:
    """The log line of one step."""
    return (f"step {row['step']}/{total_steps} loss {row['loss']:.4f} (online {row['loss_online']:.4f}, "
            f"target {row['loss_target']:.4f}, consistency {row['loss_consistency']:.4f}) "
            f"lr {row['lr']:.2e} m {row['momentum']:.5f} {row['pairs_per_s']:.1f} pairs/s wait {row['data_wait_s']:.2f}s")
