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


def row_on_worker(store: str, path: str, video_id: str, record: VideoRecord, config: ValidateConfig) -> dict:
    """Runs on a Dask worker: the row of the video whose version folder is ``path`` below ``store``'s root."""
    return video_row(open_root(store, read_only=True)[path], video_id, record, config)


def read_rows(snapshot: Snapshot, records: dict[str, VideoRecord], config: ValidateConfig) -> dict[str, dict]:
    """video_id → frame-statistics row of each video in ``records`` (complete videos of ``snapshot``),
    read from its version folder: on Dask when the config names a cluster, else here, in turn."""
    if not records:
        return {}
    if not (config.dask_address or config.dask_workers):
        root = snapshot.root()
        return {video_id: video_row(snapshot.group(video_id, root), video_id, record, config)
                for video_id, record in records.items()}
    order = sorted(records, key=lambda video_id: -(records[video_id].frame_count or 0))
    calls = {video_id: (snapshot.store, snapshot.path(video_id), video_id, records[video_id], config) for video_id in order}
    return fan_out(snapshot.store, config.dask_address, config.dask_workers, row_on_worker, calls, "validate",
                   sizes={video_id: records[video_id].frame_count or 1 for video_id in order})
