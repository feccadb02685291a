"""Reading the videos a validation cannot reuse: in this process, or fanned out as Dask tasks.

With ``ValidateConfig.dask_address`` or ``dask_workers`` each video's frame-statistics row
(``tasks.validate.frames.video_row``: its sample and the re-hash of every stored frame) is one
task on the cluster ingest uses (``tasks.io.cluster``), a plain function like ingest's decode, and
the rows are gathered here, where the Great Expectations suites run on the whole table. No cluster
is started when nothing needs reading (a store validated before and unchanged).
"""

from __future__ import annotations

from storage_schemas.records import VideoRecord
from storage_schemas.validation import ValidateConfig
from tasks.io.cluster import fan_out
from tasks.io.store import Snapshot, open_root
from tasks.validate.frames import video_row


def read_row(store: str, path: str, video_id: str, record: VideoRecord, config: ValidateConfig, root=None) -> dict:
    """The row of the video whose version folder is ``path`` below ``store``'s root (``root``: that
    root group, opened once by the caller in this process; opened here on a Dask worker)."""
    return video_row((root if root is not None else open_root(store, read_only=True))[path], video_id, record, config)


def read_rows(snapshot: Snapshot, records: dict[str, VideoRecord], config: ValidateConfig) -> dict[str, dict]:
    """video_id → frame-statistics row of each video in ``records`` (complete videos of ``snapshot``),
    read from its version folder: on Dask when the config names a cluster, else here, in turn."""
    if not records:
        return {}
    on_cluster = bool(config.dask_address or config.dask_workers)
    root = None if on_cluster else snapshot.root()
    calls = {video_id: (snapshot.store, snapshot.path(video_id), video_id, record, config, root)
             for video_id, record in records.items()}
    return fan_out(snapshot.store, config.dask_address, config.dask_workers, read_row, calls, "validate",
                   sizes={video_id: record.frame_count or 1 for video_id, record in records.items()})
