"""Flow configs: one frozen model per flow, built the same way from the CLI and from prefect.yaml."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from storage_schemas.records import DecodeParams


class IngestConfig(BaseModel):
    """Parameters of ``ingest_flow``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sources: list[str] = Field(min_length=1, description="files, folders, globs or fsspec URLs")
    store: str = Field(description="store path or fsspec URL, e.g. data/sample.zarr or memory://s.zarr")
    decode: DecodeParams = DecodeParams()
    dask_address: str | None = Field(None, description="attach to this scheduler instead of a LocalCluster")
    workers: int | None = Field(None, ge=1, description="LocalCluster workers; default one per core")
    progress: bool = True

    @field_validator("store")
    @classmethod
    def _store_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("store must be a path or URL")
        return value
