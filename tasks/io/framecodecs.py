"""Frame codecs at work: the Zarr v3 image codec, the Zarr arguments of each ``FrameCodec``
(``storage_schemas.codecs``), and the per-frame encode and decode the direct shard writer and
reader use.

``ImageCodec`` (Zarr name ``vmac.image``) keeps one frame per chunk as one image file (JPEG,
JPEG XL, QOI) through imagecodecs. It is registered with Zarr by the ``zarr.codecs`` entry point
in pyproject.toml, so every Zarr reader of a vmac store (validation, audit, evaluation, a user's
own ``zarr.open``) decodes it once vmac is installed. imagecodecs' own Zarr v3 entry points
(``imagecodecs-zarr``) need Python 3.12.
"""

from __future__ import annotations

from dataclasses import dataclass

import numcodecs
import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.codecs import BloscCodec, BytesCodec
from zarr.core.buffer import Buffer, NDBuffer
from zarr.core.common import parse_named_configuration

from storage_schemas.codecs import FrameCodec

IMAGE_CODEC_NAME = "vmac.image"


def _imagecodecs():
    # Deferred: imagecodecs loads dozens of shared libraries; lossless blosc stores never need it.
    import imagecodecs

    return imagecodecs


def encode_image(frame_hwc: np.ndarray, config: dict) -> bytes:
    """One (H, W, 3) uint8 frame as one image file of ``config['format']``."""
    codecs = _imagecodecs()
    fmt = config["format"]
    if fmt == "jpeg":
        return codecs.jpeg8_encode(frame_hwc, level=config["level"])
    if fmt == "jpegxl":
        return codecs.jpegxl_encode(frame_hwc, level=config["level"], effort=config.get("effort"))
    if fmt == "qoi":
        return codecs.qoi_encode(frame_hwc)
    raise ValueError(f"unknown image format {fmt!r}")


def decode_image(blob, config: dict, out: np.ndarray | None = None) -> np.ndarray:
    """The (H, W, 3) uint8 frame of one image file, into ``out`` when given."""
    codecs = _imagecodecs()
    fmt = config["format"]
    decode = {"jpeg": codecs.jpeg8_decode, "jpegxl": codecs.jpegxl_decode, "qoi": codecs.qoi_decode}[fmt]
    frame = decode(bytes(blob))
    if out is None:
        return frame
    out[...] = frame.reshape(out.shape)
    return out


@dataclass(frozen=True)
class ImageCodec(ArrayBytesCodec):
    """Zarr v3 array-to-bytes codec: a (1, H, W, 3) uint8 chunk as one image file."""

    is_fixed_size = False
    format: str
    level: int | None = None
    effort: int | None = None

    def __init__(self, *, format: str, level: int | None = None, effort: int | None = None) -> None:
        object.__setattr__(self, "format", format)
        object.__setattr__(self, "level", level)
        object.__setattr__(self, "effort", effort)

    @classmethod
    def from_dict(cls, data: dict) -> ImageCodec:
        _, configuration = parse_named_configuration(data, IMAGE_CODEC_NAME)
        return cls(**configuration)

    def to_dict(self) -> dict:
        config = {"format": self.format, "level": self.level, "effort": self.effort}
        return {"name": IMAGE_CODEC_NAME, "configuration": {k: v for k, v in config.items() if v is not None}}

    def _config(self) -> dict:
        return self.to_dict()["configuration"]

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec) -> NDBuffer:
        frame = decode_image(chunk_bytes.as_numpy_array(), self._config())
        return chunk_spec.prototype.nd_buffer.from_numpy_array(frame.reshape(chunk_spec.shape))

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec) -> Buffer | None:
        frame = np.ascontiguousarray(chunk_array.as_numpy_array().reshape(chunk_spec.shape[-3:]))
        return chunk_spec.prototype.buffer.from_bytes(encode_image(frame, self._config()))

    def compute_encoded_size(self, input_byte_length: int, chunk_spec) -> int:
        raise NotImplementedError  # variable-sized, like any compressor


def zarr_codec_args(codec: FrameCodec) -> dict:
    """``create_array`` keyword arguments that store chunks with ``codec``."""
    if codec.kind == "blosc":
        return {"compressors": BloscCodec(**codec.config)}
    return {"serializer": ImageCodec(**codec.config), "compressors": None}


class ChunkCodec:
    """Encode and decode single chunks the way a ``frames`` array's Zarr metadata says, without
    Zarr's machinery: what the direct shard writer and reader (``tasks.io.shards``) use."""

    def __init__(self, kind: str, config: dict):
        self.kind, self.config = kind, config
        self._blosc = numcodecs.Blosc(**_blosc_args(config)) if kind == "blosc" else None

    @classmethod
    def of(cls, codec: FrameCodec) -> ChunkCodec:
        return cls(codec.kind, codec.config)

    def encode(self, chunk: np.ndarray) -> bytes:
        if self._blosc is not None:
            return self._blosc.encode(np.ascontiguousarray(chunk))
        return encode_image(np.ascontiguousarray(chunk.reshape(chunk.shape[-3:])), self.config)

    def decode_into(self, blob, out: np.ndarray) -> None:
        """Decompress one chunk's bytes straight into ``out`` (one chunk, C order)."""
        if self._blosc is not None:
            self._blosc.decode(blob, out=out)
        else:
            decode_image(blob, self.config, out=out)


_SHUFFLES = {"noshuffle": numcodecs.Blosc.NOSHUFFLE, "shuffle": numcodecs.Blosc.SHUFFLE,
             "bitshuffle": numcodecs.Blosc.BITSHUFFLE}


def _blosc_args(config: dict) -> dict:
    return {"cname": config["cname"], "clevel": config["clevel"], "shuffle": _SHUFFLES[config["shuffle"]]}


def chunk_codec_of(inner_codecs: tuple) -> ChunkCodec | None:
    """The ChunkCodec of a shard's inner codec list, or None for a layout read through Zarr only
    (vmac writes ``[bytes, blosc]`` and ``[vmac.image]``)."""
    kinds = [type(c) for c in inner_codecs]
    if kinds == [BytesCodec, BloscCodec]:
        blosc = inner_codecs[1]
        return ChunkCodec("blosc", {"cname": blosc.cname.value, "clevel": blosc.clevel,
                                    "shuffle": blosc.shuffle.value})
    if kinds == [ImageCodec]:
        return ChunkCodec("image", inner_codecs[0]._config())
    return None
