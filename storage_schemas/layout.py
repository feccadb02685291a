"""The Zarr store layout, as constants: every reader and writer names keys through these.

```
<store>.zarr/                      attrs: schema_version, name, created_by
  videos/<video_id>/frames         uint8 (T, H, W, 3), 1-frame chunks inside shards of T_shard frames
  videos/<video_id>/timestamps     float64 (T,), optional: presentation time of each frame, seconds
                                   from the first shown frame (videos; frame folders with --fps)
  videos/<video_id>/masks          uint8 (T, H, W), optional (object or part-class ids)
  videos/<video_id>/keypoints      float32 (T, J, 3), optional (x, y, visible)
  videos/<video_id>  attrs         a VideoRecord (storage_schemas.records)
```
"""

# 2: frames as the decoded stream shows them (no frame-rate padding), display aspect, exact sizes,
# per-frame timestamps. A store written under 1 re-decodes (the version is part of the decode key).
SCHEMA_VERSION = 2

VIDEOS_GROUP = "videos"
FRAMES = "frames"
TIMESTAMPS = "timestamps"
MASKS = "masks"
KEYPOINTS = "keypoints"

# Attribute key under which a video group's VideoRecord lives, and the root's StoreInfo.
VIDEO_RECORD_ATTR = "vmac"
STORE_INFO_ATTR = "vmac_store"

# Zarr groups whose folders also hold plain files that Zarr passes over: per-video lock files
# and append-only lineage records (JSON).
LOCKS_DIR = ".vmac-locks"
LINEAGE_DIR = "lineage"

# Blosc zstd level 3 without shuffle: bitshuffle (Blosc's uint8 default) compresses frames worse
# (docs/architecture.md, "Store layout").
COMPRESSOR = {"cname": "zstd", "clevel": 3, "shuffle": "noshuffle"}

# Mask value of a frame that has no annotation file (DAVIS test-dev style sparse labels).
NOT_ANNOTATED = 255

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
