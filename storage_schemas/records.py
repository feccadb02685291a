"""Metadata contracts: what a video group's attributes hold and what the catalog lists."""

from __future__ import annotations

from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from storage_schemas.codecs import FRAME_CODECS, LEGACY_FRAME_CODEC
from storage_schemas.layout import LEGACY_STORE_FORMAT, SCHEMA_VERSION


class Status(str, Enum):
    """A video's lifecycle. Only ``complete`` videos are read by later stages."""

    writing = "writing"  # arrays are being written; a crash leaves this, and the next run redoes it
    complete = "complete"
    failed = "failed"


class SourceKind(str, Enum):
    video = "video"  # a container decoded by ffmpeg
    frames = "frames"  # a folder of image files (DAVIS, VIP, JHMDB or plain)


# The smallest stored short side a decode may ask for: validation refuses frames smaller than this
# (ValidationThresholds.height_min and width_min), so a smaller one would only fail after decoding.
MIN_SHORT_SIDE = 16


class DecodeParams(BaseModel):
    """Everything besides the source bytes that determines the stored arrays."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    short_side: int = Field(256, ge=0, description=f"resize the short side to this; 0 keeps native; else at "
                            f"least {MIN_SHORT_SIDE} px (validation's smallest frame)")
    fps: float | None = Field(None, gt=0, description="resample to this frame rate; None keeps native")
    shard_frames: int = Field(64, ge=1, description="frames per shard (one write unit) along time")
    on_decode_error: Literal["fail", "keep"] = Field(
        "fail", description="a video whose decode logged errors (ffmpeg conceals corrupt data and goes on) fails "
        "(default), or is kept with the error count in its record")
    motion: bool = Field(False, description="store a motion map beside the frames (layout.MOTION): codec "
                         "motion vectors where the codec exports them, frame differences otherwise")
    frame_codec: str | None = Field(
        None, description="how frames are kept (storage_schemas.codecs); None: the store's codec, resolved when "
        "ingest plans. Lossless codecs are not part of the decode key; lossy ones are")
    schema_version: int = SCHEMA_VERSION

    @field_validator("short_side")
    @classmethod
    def _storable_short_side(cls, side: int) -> int:
        if 0 < side < MIN_SHORT_SIDE:
            raise ValueError(f"must be 0 (native) or at least {MIN_SHORT_SIDE} px: validation refuses smaller frames")
        return side

    @field_validator("frame_codec")
    @classmethod
    def _known_codec(cls, name: str | None) -> str | None:
        if name is not None and name not in FRAME_CODECS:
            raise ValueError(f"unknown frame codec {name!r}; known: {', '.join(FRAME_CODECS)}")
        return name


class StreamRecord(BaseModel):
    """One video stream of a container, as the probe found it (``VideoRecord.video_streams``)."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(description="the container's stream index")
    codec: str
    width: int = Field(description="coded width, pixels (0 when the container does not say)")
    height: int
    sample_aspect_ratio: str = Field("1:1", description="pixel aspect ratio, 'num:den'")
    pix_fmt: str | None = None
    fps: float | None = Field(None, description="the container's average rate (informational)")
    default: bool = Field(False, description="the container marks it the default stream")
    attached_pic: bool = Field(False, description="an attached picture (cover art), not a video")


class GeometryChange(BaseModel):
    """Where the decoded picture changes size, pixel aspect or pixel format mid-stream."""

    model_config = ConfigDict(frozen=True)

    frame: int = Field(description="the first decoded frame (0-based, before any --fps resampling) of the new geometry")
    time: float | None = Field(None, description="its presentation time, seconds on the container's clock")
    width: int
    height: int
    sample_aspect_ratio: str
    pix_fmt: str


class TimestampDiscontinuity(BaseModel):
    """A presentation timestamp that does not follow the one before it (a reset, two recordings
    joined): the stored clock goes on one frame interval later (docs/ingest.md, "Time")."""

    model_config = ConfigDict(frozen=True)

    frame: int = Field(description="the first stored frame after the jump")
    before: float = Field(description="the container's time of the frame before, seconds")
    after: float = Field(description="the container's time of this frame, seconds")


class NumberingGap(BaseModel):
    """Frame files missing from a folder's numbering (``00004.jpg`` then ``00007.jpg`` where the
    numbers step by 1): the stored frames before and after, and how many numbers are missing."""

    model_config = ConfigDict(frozen=True)

    frame: int = Field(description="the stored frame after the gap (0-based)")
    before: str = Field(description="the file before the gap")
    after: str = Field(description="the file after it")
    missing: int = Field(description="frame numbers missing between them, at the folder's step")


class VideoRecord(BaseModel):
    """Attributes of ``videos/<video_id>``: one catalog row."""

    model_config = ConfigDict(frozen=True)

    video_id: str
    source_uri: str
    source_kind: SourceKind
    layout: str = Field(description="file, folder, davis, vip or jhmdb")
    status: Status
    reason: str | None = Field(None, description="one line; set when status is failed")
    sha256: str | None = Field(None, description="content hash of the source (all files of a folder)")
    byte_size: int | None = None
    source_fingerprint: str | None = Field(
        None, description="the stat fingerprint the sha256 was taken at (size, times, inode; an object's version): "
        "while it is unchanged, ingest does not read the source again")
    decode_params: DecodeParams
    decode_key: str | None = Field(None, description="hash of sha256 and decode_params; decides re-decoding")
    # From the source (container metadata, packets, files).
    codec: str | None = None
    container_format: str | None = Field(None, description="the demuxer that read it (ffmpeg's name, e.g. 'mpegts')")
    stream_index: int | None = Field(None, description="the container's index of the decoded video stream")
    video_streams: list[StreamRecord] | None = Field(
        None, description="every video stream of the container; None for records written before it was kept")
    stream_choice: str | None = Field(None, description="why stream_index was decoded (ffmpeg's own rule)")
    pix_fmt: str | None = Field(None, description="the decoded stream's pixel format (e.g. yuv420p10le)")
    color_range: str | None = Field(None, description="tv (limited) or pc (full); None when the stream does not say")
    color_primaries: str | None = None
    color_transfer: str | None = Field(None, description="transfer characteristic (smpte2084 = PQ, arib-std-b67 = HLG)")
    color_space: str | None = Field(None, description="YUV matrix coefficients")
    tone_mapping: str | None = Field(None, description="how HDR was mapped to the stored 8-bit BT.709 RGB (the filters)")
    field_order: str | None = Field(None, description="progressive, tt, bb, tb or bt (interlaced), unknown")
    deinterlace: str | None = Field(None, description="the deinterlacing filter applied before scaling, if any")
    geometry_changes: list[GeometryChange] = Field(
        default_factory=list, description="mid-stream changes of size, pixel aspect or format; each stored scaled "
        "to the video's one size (same display aspect only: a change of shape fails the video)")
    timestamp_discontinuities: list[TimestampDiscontinuity] = Field(
        default_factory=list, description="where the container's clock jumps back or repeats; the stored timestamps "
        "go on one frame interval later")
    leading_frames_dropped: int = Field(
        0, description="frames before the first keyframe (a file cut mid-GOP): they reference pictures the file "
        "does not hold and cannot be decoded")
    source_fps: float | None = Field(None, description="the container's average frame rate (informational)")
    source_width: int | None = Field(None, description="display width: coded width x SAR, after rotation")
    source_height: int | None = Field(None, description="display height, after rotation")
    sample_aspect_ratio: str | None = Field(None, description="pixel aspect ratio as 'num:den' (1:1 square)")
    rotation: int = 0
    mirrored: bool = Field(False, description="the display matrix also flips the picture (players, and the stored "
                           "frames, show it mirrored)")
    duration: float | None = None
    container_frame_count: int | None = Field(
        None, description="frames the container's index lists (MP4), edit-list cuts included; None when it has none")
    probe_frame_count: int | None = Field(
        None, description="frames the source shows: packets the demuxer delivers, minus those an edit list cuts "
        "(videos); image files (folders). What the decode must deliver")
    frame_names: list[str] | None = Field(None, description="each stored frame's source file name (frame folders)")
    # Frame folders: what the image files held (docs/ingest.md, "Frame folders").
    image_modes: list[str] = Field(default_factory=list, description="the frame files' PIL modes (RGB, L, P, "
                                   "I;16, CMYK, LA, RGBA…), sorted")
    bit_depth: int | None = Field(None, description="bits per sample of the deepest frame file; above 8, samples "
                                  "were scaled to 8 bits as round(v × 255 / (2^bits − 1)), never clipped")
    exif_orientations: dict[int, int] = Field(
        default_factory=dict, description="EXIF orientation (2-8) → frames it was applied to (viewers' rotation "
        "and mirroring); frames stored as their pixels lie (orientation 1 or none) are not counted")
    numbering_step: int | None = Field(None, description="the step of the frame files' numbers (1; 5 for "
                                       "YouTube-VOS); None when the names carry no increasing numbers")
    numbering_gaps: list[NumberingGap] = Field(default_factory=list, description="where frame numbers are missing "
                                               "(by the folder's own step, beyond rounding)")
    image_notes: dict[str, int] = Field(
        default_factory=dict, description="what frame files needed → how many files: an MPO's further pictures "
        "(the first stored), a JPEG without its end marker (read whole)")
    source_notes: list[str] = Field(default_factory=list, description="what the dataset layout says of this "
                                    "source a person should know (e.g. a YouTube-VOS video meta.json does not list)")
    orphan_annotations: list[str] = Field(default_factory=list, description="annotation files whose frame is not "
                                          "in the folder: not stored")
    label_reading: str | None = Field(None, description="how grey annotation levels became ids (one object; "
                                      "ids; one soft-edged object); None for palette annotations")
    mask_semantics: Literal["complete", "first_appearance"] | None = Field(
        None, description="what an annotated frame's mask holds: every object in it (complete: DAVIS, VIP, "
        "YouTube-VOS train), or only the objects that first appear in it (first_appearance: YouTube-VOS valid "
        "and test, where 0 does not mean background)")
    object_first_frames: dict[int, int] = Field(
        default_factory=dict, description="object id → the stored frame its mask first appears in")
    object_categories: dict[int, str] = Field(default_factory=dict, description="object id → category "
                                              "(YouTube-VOS meta.json)")
    # What was stored.
    fps: float | None = Field(None, description="frames per second: the resampling rate, or the mean rate of the "
                              "stored timestamps; None for a frame folder without --fps")
    frame_rate_mode: Literal["constant", "variable", "resampled"] | None = Field(
        None, description="constant or variable as decoded, or resampled to decode_params.fps")
    has_timestamps: bool = Field(False, description="a timestamps array (seconds, float64) sits beside the frames")
    decode_errors: int = Field(0, description="errors the decoder logged (kept only with on_decode_error=keep)")
    decode_error: str | None = Field(None, description="the first of them")
    frame_count: int | None = None
    height: int | None = None
    width: int | None = None
    has_masks: bool = False
    object_ids: list[int] = Field(default_factory=list)
    has_keypoints: bool = False
    num_joints: int | None = None
    frames_sha256: str | None = Field(None, description="sha256 of the stored frame bytes, C order, as they decode "
                                      "from the store (under a lossy codec: after its loss)")
    aliases: list[str] = Field(
        default_factory=list, description="other source URIs with the same bytes and decode parameters (a symlinked "
        "folder, a copy): recorded here instead of storing the frames twice")
    has_motion: bool = Field(False, description="a motion map (layout.MOTION) sits beside the frames")
    motion_source: Literal["motion_vectors", "frame_difference"] | None = Field(
        None, description="what the motion map holds and its units (layout.MOTION_SOURCES): codec motion "
        "vectors in stored pixels, or frame differences in 0-255 levels")
    motion_cell: int | None = Field(None, description="side of a motion-map cell in stored pixels")
    motion_sha256: str | None = Field(None, description="sha256 of the stored motion-map bytes, C order")
    split: str | None = Field(None, description="the dataset split the source is in: of several split lists "
                              "naming it, the most specific (not a union such as trainval; then the smallest)")
    splits: list[str] = Field(default_factory=list, description="every split list of its dataset that names it")
    dataset_splits: list[str] | None = Field(
        None, description="the split lists its dataset tree holds ([]: none); None in records written before "
        "vmac kept them. Evaluation's default split applies only where the tree lists it")
    ingest_run_id: str | None = None
    written_at: str | None = None
    code_version: str | None = None


class StoreInfo(BaseModel):
    """Root attributes of a store."""

    schema_version: int = SCHEMA_VERSION
    name: str
    created_by: str
    # Chosen when the store is created; a store without it predates recorded codecs.
    frame_codec: str = Field(LEGACY_FRAME_CODEC, description="how every frames array of the store is kept "
                             "(storage_schemas.codecs); its arrays' Zarr metadata name the codec too")
    store_format: int = Field(LEGACY_STORE_FORMAT, description="how the store keeps its catalog: 1, in each video "
                              "group's attributes, rewritten in place (vmac migrate converts it); 2, in snapshots "
                              "over immutable version folders (storage_schemas.snapshots)")
