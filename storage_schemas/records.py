"""Metadata contracts: what a video group's attributes hold and what the catalog lists."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field

from storage_schemas.layout import SCHEMA_VERSION


class Status(str, Enum):
    """A video's lifecycle. Only ``complete`` videos are read by later stages."""

    writing = "writing"  # arrays are being written; a crash leaves this, and the next run redoes it
    complete = "complete"
    failed = "failed"


class SourceKind(str, Enum):
    video = "video"  # a container decoded by ffmpeg
    frames = "frames"  # a folder of image files (DAVIS, VIP, JHMDB or plain)


class DecodeParams(BaseModel):
    """Everything besides the source bytes that determines the stored arrays."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    short_side: int = Field(256, ge=0, description="resize the short side to this; 0 keeps native")
    fps: float | None = Field(None, gt=0, description="resample to this frame rate; None keeps native")
    shard_frames: int = Field(64, ge=1, description="frames per shard (one write unit) along time")
    schema_version: int = SCHEMA_VERSION


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
    decode_params: DecodeParams
    decode_key: str | None = Field(None, description="hash of sha256 and decode_params; decides re-decoding")
    # From the probe.
    codec: str | None = None
    source_fps: float | None = None
    source_width: int | None = None
    source_height: int | None = None
    rotation: int = 0
    duration: float | None = None
    probe_frame_count: int | None = None
    # What was stored.
    fps: float | None = None
    frame_count: int | None = None
    height: int | None = None
    width: int | None = None
    has_masks: bool = False
    object_ids: list[int] = Field(default_factory=list)
    has_keypoints: bool = False
    num_joints: int | None = None
    frames_sha256: str | None = Field(None, description="sha256 of the stored frame bytes, C order")
    split: str | None = None
    ingest_run_id: str | None = None
    written_at: str | None = None
    code_version: str | None = None


class StoreInfo(BaseModel):
    """Root attributes of a store."""

    schema_version: int = SCHEMA_VERSION
    name: str
    created_by: str
