"""Contracts of the audit: what drifted from its record, and the report an audit writes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Drift(BaseModel):
    """One thing that no longer matches its record."""

    model_config = ConfigDict(frozen=True)

    what: str = Field(description="source, frames, motion, record, checkpoint, encoder, store or video")
    uri: str = Field(description="where: the file, video group or store")
    video_id: str | None = None
    recorded: str | None = Field(None, description="the sha256 the record holds")
    found: str | None = Field(None, description="the sha256 found now; None when missing or unreadable")
    detail: str = Field(description="changed, missing, or unreadable: <reason>")
    record: str | None = Field(None, description="the record (catalog row or lineage file) compared with")


class AuditReport(BaseModel):
    """What an audit re-hashed and what drifted."""

    target: str
    target_kind: Literal["store", "run"]
    started_at: str
    seconds: float
    checked: dict[str, int] = Field(description="hashes compared, by what (sources, frames, motion, files): "
                                    "frames and motion count arrays (one per video), not frames")
    drifts: list[Drift]
    notes: list[str] = Field(default_factory=list, description="what could not be checked, and why")
    record_path: str | None = Field(None, description="the audit lineage record written")

    @property
    def drifted(self) -> bool:
        return bool(self.drifts)


# How the counts of ``AuditReport.checked`` read to a person: "frames" counts frame arrays.
CHECKED_LABELS = {"sources": "source files", "frames": "frame arrays", "motion": "motion maps",
                  "files": "run files"}


def describe_checked(checked: dict[str, int]) -> str:
    """``AuditReport.checked`` in words, e.g. "2 source files, 2 frame arrays"."""
    return ", ".join(f"{n} {CHECKED_LABELS.get(what, what)}" for what, n in checked.items())
