"""The Zarr store layout, as constants: every reader and writer names keys through these.

This docstring is the layout's one written description (README, docs/commands.md and
docs/architecture.md point here; tests/io/test_layout_doc.py holds it to the constants, to
``StoreInfo`` and to the default frame codec). A store is a Zarr v3 group, local or on any fsspec
filesystem.

```
<store>.zarr/                      attrs: vmac_store, a StoreInfo (schema_version, name, created_by, frame_codec,
                                   store_format: 2)
  videos/<video_id>/<version>/     one decode of the video (version: its start time + 8 hex digits), written
                                   once and never again once committed; its VideoRecord in attrs (source,
                                   hashes, decode parameters and key, geometry, frame counts and rate, status)
    frames                         uint8 (T, H, W, 3): 1-frame chunks inside shards of 64 frames (fewer for
                                   frames over 4 MB), compressed with the store's frame_codec (default lz4)
    timestamps                     float64 (T,), optional: presentation time of each frame, seconds from the
                                   first shown frame (videos; frame folders with --fps)
    masks                          uint8 (T, H, W), optional: object or part-class ids; 255 = no label (a
                                   whole frame: not annotated; a band: void, scored as background)
    keypoints                      float32 (T, J, 3), optional: x, y, visible (stored pixels)
    motion                         float32 (T, ceil(H / 8), ceil(W / 8)), optional (ingest --motion): each
                                   8×8-pixel cell's motion in frame t, sharded like the frames; units in the
                                   record's motion_source
  snapshots/<snapshot_id>.json     one committed state of the catalog: every video's version and record
                                   (aliases: other source URIs with the same bytes), the latest validation stamp
  refs/main/<seq>.json             commit seq: the snapshot it made the tip, when, by which command, what changed
  refs/main.json                   the latest commit number a writer saw (a hint; readers walk on from it)
  refs/tags/<name>.json            a name kept on a snapshot (pre-training: run-<run id>)
  lineage/                         append-only lineage records (*.json); their OpenLineage events in
                                   lineage/openlineage/
  validation/                      Great Expectations results and reports (*.json, *.md), append-only
```
"""

# 2: frames as the decoded stream shows them (no frame-rate padding), display aspect, exact sizes,
# per-frame timestamps. 3: the decoder contract (docs/ingest.md): ffmpeg's own stream choice, each
# picture held to the stored shape, interlaced video deinterlaced, HDR tone-mapped, a clock that
# jumps back made continuous, frames before a cut file's first keyframe left out; and for frame
# folders the same care (tasks/io/images.py): EXIF orientation applied, 16-bit samples scaled
# (not clipped), CMYK, palette and grey+alpha converted, WebP and TIFF frames read, numbering gaps
# recorded and, with --fps, the file numbers as the clock. A store written under an older version
# re-decodes its videos once (the version is part of the decode key).
SCHEMA_VERSION = 3

VIDEOS_GROUP = "videos"
FRAMES = "frames"
TIMESTAMPS = "timestamps"
MASKS = "masks"
KEYPOINTS = "keypoints"
MOTION = "motion"

# Each array's dimension names (Zarr v3 ``dimension_names``): what xarray reads a version folder by
# (``xr.open_zarr(STORE, group=PATH)``; docs/architecture.md). Frames and masks share t, y, x; the
# motion map's cells are coarser, so they have names of their own.
DIMENSIONS = {
    FRAMES: ("t", "y", "x", "channel"),
    TIMESTAMPS: ("t",),
    MASKS: ("t", "y", "x"),
    KEYPOINTS: ("t", "joint", "coordinate"),
    MOTION: ("t", "cell_y", "cell_x"),
}

# Side of a motion-map cell, in stored pixels: finer than any training patch (a 32-px patch of a
# crop resized to 128-224 px covers 8-40 stored pixels at short side 256), coarse enough that the
# map is ~1/200 of the frames' bytes.
MOTION_CELL = 8

# What a motion map holds (VideoRecord.motion_source):
# - motion_vectors: the codec's motion vectors (H.264, MPEG-4 Part 2, MPEG-1/2), cell mean of
#   each 4×4 coded block's largest displacement magnitude, in stored pixels; 0 on intra blocks
#   and I-frames;
# - frame_difference: where the codec exports none (frame folders, HEVC, VP9, AV1, intra-only
#   codecs, --fps resampling), cell mean of |frame t - frame t-1| over pixels and channels, in
#   0-255 intensity levels; 0 on frame 0.
MOTION_SOURCES = ("motion_vectors", "frame_difference")

# Attribute key under which a video group's VideoRecord lives, and the root's StoreInfo.
VIDEO_RECORD_ATTR = "vmac"
STORE_INFO_ATTR = "vmac_store"

# The folder of append-only lineage records (JSON) inside a store. Stores of format 1 also had a
# Zarr group of per-video lock files, which ``vmac migrate`` removes.
LINEAGE_DIR = "lineage"
LEGACY_LOCKS_DIR = ".vmac-locks"

# How a store keeps its catalog (StoreInfo.store_format): 1, in each video group's attributes,
# arrays rewritten in place; 2, in snapshots over immutable version folders
# (storage_schemas.snapshots), each video's arrays under videos/<video_id>/<version>/.
LEGACY_STORE_FORMAT = 1
STORE_FORMAT = 2

# Mask value of a frame that has no annotation file (DAVIS test-dev style sparse labels).
NOT_ANNOTATED = 255

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov")
# Frame files a folder walk takes (PIL reads them; tasks/io/images.py decodes them).
# .jfif and .jpe are JPEG's other extensions; a .gif with one picture is a still image (an
# animated one is a video: the folder walk tells them apart).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jfif", ".jpe", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif")
