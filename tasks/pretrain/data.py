"""Which data a pre-training run reads: every store pinned to one snapshot for the whole run.

A store is given as ``STORE`` (its tip when the run starts), ``STORE@SNAPSHOT`` or ``STORE@TAG``;
the run turns each into ``STORE@SNAPSHOT`` once, before anything reads it, and every later step
(the validation check, the pair index, each loader worker, each DDP rank, the lineage records and
the checkpoints, which embed the config) reads that snapshot. A resumed run keeps the snapshots it
started on (its ``config.json``), so its sampler's positions still point at the same pairs. The
snapshot is tagged ``run-<run id>`` so that ``vmac gc`` keeps it (``tag_snapshots``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch.distributed as dist

from storage_schemas.config import PretrainConfig
from storage_schemas.run import CONFIG
from tasks.io.snapshots import create_tag, split_ref
from tasks.io.store import open_snapshot
from tasks.io.uris import normalize
from tasks.pretrain.world import World

RUN_TAG_PREFIX = "run-"


def _started_pins(config: PretrainConfig) -> dict[str, str]:
    """Store → its pinned form, from the ``config.json`` of the run being resumed (empty otherwise)."""
    path = Path(config.out) / CONFIG
    if not config.run.resume or not path.exists():
        return {}
    try:
        stores = json.loads(path.read_text()).get("stores") or []
    except (OSError, ValueError):
        return {}
    return {normalize(split_ref(store)[0]): store for store in stores if split_ref(store)[1]}


def pin_stores(config: PretrainConfig, world: World | None = None) -> PretrainConfig:
    """``config`` with every store as ``STORE@SNAPSHOT``: a snapshot or tag it names resolved to the
    snapshot's id, a store named alone pinned at its tip (or, when resuming, at the snapshot the run
    started on). Under DDP rank 0 decides and every rank takes its stores.

    Raises FileNotFoundError, ``tasks.io.store.LegacyStoreError`` or
    ``tasks.io.snapshots.SnapshotNotFoundError`` for a store that cannot be read."""
    if world is None or world.is_main:
        started = _started_pins(config)
        pinned = []
        for store in config.stores:
            uri, ref = split_ref(store)
            pinned.append(open_snapshot(started.get(normalize(uri), store) if ref is None else store).ref)
    else:
        pinned = None
    if world is not None and world.size > 1:
        shared = [pinned]
        dist.broadcast_object_list(shared, src=0)
        pinned = shared[0]
    return config.model_copy(update={"stores": pinned})


def tag_snapshots(stores: list[str], run_id: str) -> list[str]:
    """Tag each pinned store's snapshot ``run-<run_id>`` so ``vmac gc`` keeps it; one line per store
    that could not be tagged (a store this user may not write, say): the run goes on, and the line
    says what ``vmac gc`` may then remove."""
    problems = []
    for store in stores:
        uri, snapshot = split_ref(store)
        if not snapshot:
            continue
        try:
            create_tag(uri, f"{RUN_TAG_PREFIX}{run_id}", snapshot, "pre-training run")
        except (OSError, ValueError) as exc:
            problems.append(f"snapshot {snapshot} of {uri} not tagged ({exc}): `vmac gc` may remove it once it is "
                            "older than its --older-than")
    return problems
