"""Every frame codec round-trips through the direct shard writer, Zarr and the direct reader;
the store records its codec, and a lossy codec says so in the decode key and the frames hash."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid

import fsspec
import numpy as np
import pytest

from storage_schemas.codecs import DEFAULT_FRAME_CODEC, FRAME_CODECS, LEGACY_FRAME_CODEC, frame_codec
from storage_schemas.layout import FRAMES, STORE_INFO_ATTR
from storage_schemas.records import DecodeParams, SourceKind, Status, VideoRecord
from tasks.ingest.plan import decode_key
from tasks.io.shards import ShardedFrames, ShardWriter
from tasks.io.store import (
    FrameCodecMismatchError,
    frames_sha256,
    open_snapshot,
    open_store,
    resolve_frame_codec,
    store_frame_codec,
)
from tests.conftest import moving_frames
from tests.stores import new_video_folder


def smooth_frames(frames: int, height: int, width: int) -> np.ndarray:
    """Gradients with a moving disc: what lossy image codecs are made for (noise is not)."""
    y, x = np.mgrid[0:height, 0:width]
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        disc = (x - 5 - 2 * t) ** 2 + (y - height / 2) ** 2 < (height / 4) ** 2
        out[t, ..., 0] = 40 + 150 * x / width
        out[t, ..., 1] = 60 + 120 * y / height
        out[t, ..., 2] = np.where(disc, 200, 50)
    return out


def _group(store: str, codec: str):
    """A new version folder of video ``v`` (not committed: these tests read it by its path)."""
    open_store(store, frame_codec=codec)
    record = VideoRecord(video_id="v", source_uri="/v.mp4", source_kind=SourceKind.video, layout="file",
                         status=Status.writing, decode_params=DecodeParams(shard_frames=4, frame_codec=codec))
    return new_video_folder(store, record)


def _direct_read(store: str, array) -> np.ndarray:
    fs, root_path = fsspec.core.url_to_fs(store)
    reader = ShardedFrames.open(fs, root_path, array)
    assert reader is not None, "the direct reader must know every codec vmac writes"
    out = np.empty(array.shape, np.uint8)
    reader.load_indexes(set(range(-(-array.shape[0] // reader.shard_frames))))
    for t in range(array.shape[0]):
        path, start, end = reader.byte_range(t)
        reader.decode_into(fs.cat_file(path, start, end), out[t])
    return out


@pytest.mark.parametrize("codec", list(FRAME_CODECS))
@pytest.mark.parametrize("where", ["local", "memory"])
def test_every_codec_round_trips(codec, where, tmp_path):
    store = str(tmp_path / "s.zarr") if where == "local" else f"memory://codec-{uuid.uuid4().hex}.zarr"
    frames = smooth_frames(10, 24, 40)  # 2 full shards of 4 and a partial one
    group = _group(store, codec)
    writer = ShardWriter(group, FRAMES, (24, 40, 3), "uint8", 4, 6, codec=frame_codec(codec))
    writer.append(frames[:3])
    writer.append(frames[3:])
    assert writer.close() == 10
    array = open_store(store, mode="r")[f"{group.path}/{FRAMES}"]
    through_zarr = array[:]
    np.testing.assert_array_equal(_direct_read(store, array), through_zarr)
    # The record's hash is what validation recomputes from Zarr reads, lossy or not.
    assert writer.sha256.hexdigest() == frames_sha256(array)
    if frame_codec(codec).lossless:
        np.testing.assert_array_equal(through_zarr, frames)
        assert writer.sha256.hexdigest() == hashlib.sha256(frames.tobytes()).hexdigest()
    else:
        error = through_zarr.astype(float) - frames
        psnr = 10 * np.log10(255**2 / np.mean(error**2))
        assert psnr > 28, f"{codec}: PSNR {psnr:.1f} dB"
        assert not np.array_equal(through_zarr, frames)  # it is lossy, and the hash says so


def test_plain_zarr_reads_the_image_codec_through_its_entry_point(tmp_path):
    store = str(tmp_path / "s.zarr")
    frames = moving_frames(5, 16, 16, seed=1)
    group = _group(store, "qoi")
    writer = ShardWriter(group, FRAMES, (16, 16, 3), "uint8", 4, 5, codec=frame_codec("qoi"))
    writer.append(frames)
    writer.close()
    meta = json.loads((tmp_path / "s.zarr" / group.path / FRAMES / "zarr.json").read_text())
    assert meta["codecs"][0]["configuration"]["codecs"] == [{"name": "vmac.image", "configuration": {"format": "qoi"}}]
    # A fresh interpreter that imports only zarr: the codec comes from vmac's entry point.
    code = f"import zarr; a = zarr.open_array({str(tmp_path / 's.zarr' / group.path / FRAMES)!r}); print(int(a[:].sum()))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == int(frames.sum())


def test_the_store_records_its_codec_and_keeps_it(tmp_path):
    store = str(tmp_path / "s.zarr")
    assert resolve_frame_codec(store, DecodeParams()).frame_codec == DEFAULT_FRAME_CODEC  # no store yet
    open_store(store, frame_codec="jpeg-95")
    assert store_frame_codec(open_store(store, mode="r")) == "jpeg-95"
    assert resolve_frame_codec(store, DecodeParams()).frame_codec == "jpeg-95"
    with pytest.raises(FrameCodecMismatchError, match="keeps its frames as jpeg-95; --frame-codec lz4"):
        resolve_frame_codec(store, DecodeParams(frame_codec="lz4"))
    # A store written before codecs were recorded holds the old blosc zstd-3 frames.
    legacy = open_store(str(tmp_path / "old.zarr"))
    info = dict(legacy.attrs[STORE_INFO_ATTR])
    info.pop("frame_codec")
    legacy.attrs[STORE_INFO_ATTR] = info
    assert store_frame_codec(open_store(str(tmp_path / "old.zarr"), mode="r")) == LEGACY_FRAME_CODEC


def test_only_a_lossy_codec_changes_the_decode_key():
    sha = "0" * 64
    keys = {name: decode_key(sha, DecodeParams(frame_codec=name)) for name in FRAME_CODECS}
    lossless = {keys[name] for name, codec in FRAME_CODECS.items() if codec.lossless}
    assert lossless == {decode_key(sha, DecodeParams())}  # stores from before the codec field keep their keys
    lossy = [keys[name] for name, codec in FRAME_CODECS.items() if not codec.lossless]
    assert len(set(lossy)) == len(lossy) and not set(lossy) & lossless


def test_an_unknown_codec_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown frame codec 'png'; known: zstd-3"):
        DecodeParams(frame_codec="png")


# Slow, like the other ingest_flow tests: it starts a Prefect API and a Dask LocalCluster in this
# process (a DataLoader test forking workers after it then saw a worker exit at teardown).
@pytest.mark.slow
def test_ingest_creates_the_store_with_the_codec_asked_for_and_a_rerun_keeps_it(prefect_harness, tmp_path, make_video):
    from flows.ingest import ingest_flow
    from storage_schemas.config import IngestConfig

    make_video("a.mp4", frames=6)
    store = str(tmp_path / "s.zarr")

    def run(**decode):
        return ingest_flow(IngestConfig(sources=[str(tmp_path / "videos")], store=store, dask_workers=1,
                                        progress=False, decode=decode))

    assert run(frame_codec="qoi").frames_decoded == 6
    assert store_frame_codec(open_store(store, mode="r")) == "qoi"
    snapshot = open_snapshot(store)
    [video_id] = list(snapshot.entries)
    assert "vmac.image" in json.dumps(snapshot.group(video_id)[FRAMES].metadata.to_dict())
    # The same command again, and the command without --frame-codec: nothing to decode.
    assert run(frame_codec="qoi").frames_decoded == 0
    assert run().frames_decoded == 0
    with pytest.raises(FrameCodecMismatchError, match="keeps its frames as qoi"):
        run(frame_codec="lz4")
