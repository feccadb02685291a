"""The embedded sample: a small deterministic dataset rendered from a seed, no download.

``write_sample(DIR, seed)`` writes::

    DIR/videos/<clip>.mp4                                     every clip, H.264 (x264, 1 thread)
    DIR/labels/<clip>.npz                                     every clip's exact labels (below)
    DIR/davis/JPEGImages/480p/<seq>/00000.jpg                 two "objects" clips re-rendered at
    DIR/davis/Annotations/480p/<seq>/00000.png                480×854; palette PNGs of object ids
    DIR/davis/ImageSets/2017/val.txt
    DIR/vip/Images/<video>/000000000001.jpg                   the first "figure" clip, VIP part
    DIR/vip/Annotations/Category_ids/<video>/000000000001.png classes as mode "L" PNGs
    DIR/vip/lists/val_videos.txt
    DIR/jhmdb/Rename_Images/<action>/<video>/00001.png        the first "figure" clip re-rendered
    DIR/jhmdb/joint_positions/<action>/<video>/joint_positions.mat   at 240×320, first 40 frames
                                                              (JHMDB's longest); pos_img 2×15×T
    DIR/jhmdb/splits/<action>_test_split1.txt
    DIR/manifest.json                                         written last: its presence means done

``labels/<clip>.npz`` holds ``masks_thw`` (uint8 object ids) and, for figure clips,
``parts_thw`` (uint8 VIP classes) and ``keypoints_tj3`` (float32 x, y, visible; 0-based pixel
centres). JHMDB ``pos_img`` uses the same 0-based pixel coordinates. With ``small=True`` every
export keeps its clip's own size (the DAVIS folder is still named ``480p``; the manifest records
the real size).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from storage_schemas.palette import DAVIS_PALETTE
from tasks.io.ffmpeg import encode_h264
from tasks.io.files import make_folder, write_atomic
from vmac_synthetic import (
    GENERATOR_VERSION,
    JOINT_NAMES,
    PART_CLASSES,
    SyntheticClip,
    default_sample_specs,
    render_clip,
)

MANIFEST_NAME = "manifest.json"

# x264 constant quality for the sample's MP4s. Measured on these clips: ~34 dB PSNR against the
# rendered frames, a ceiling set by yuv420p chroma subsampling of the colour textures rather than
# by CRF (crf 16 gains under 1 dB for 1.8× the bytes); ~0.2 MB per clip.
SAMPLE_CRF = 20
JPEG_QUALITY = 90

# The benchmarks' native frame sizes (height, width), used for the default (not small) sample.
DAVIS_SIZE = (480, 854)
JHMDB_SIZE = (240, 320)
# JHMDB clips are 15–40 frames long; the export keeps the figure clip's first 40.
JHMDB_MAX_FRAMES = 40
# zlib level 3 writes the JHMDB PNG frames ~3× faster than the default 6 for ~10% more bytes.
PNG_COMPRESS_LEVEL = 3




def write_sample(out_dir: str | Path, seed: int = 0, small: bool = False) -> dict:
    """Render the sample for ``seed`` into ``out_dir`` and return its manifest.

    The same seed gives byte-identical frames and labels (``frames_sha256`` in the manifest is
    over the raw rendered uint8 frames). Existing files of the same names are overwritten;
    the manifest is written last.
    """
    root = Path(out_dir)
    make_folder(root)
    specs = default_sample_specs(seed, small=small)
    davis_names = [spec.name for spec in specs if spec.kind == "objects"][:2]
    figure_name = next(spec.name for spec in specs if spec.kind == "figure")
    clips, encodes = [], []
    # x264 runs in its own process: encoding clip k on one core while clip k+1 renders on the
    # other roughly halves the wall time. At most one encode is in flight, bounding memory.
    with ThreadPoolExecutor(max_workers=1) as encoder:
        for spec in specs:
            clip = render_clip(spec)
            if encodes:
                encodes[-1].result()
            encodes.append(encoder.submit(_write_video, root, clip))
            exports = {"labels": _write_labels(root, clip)}
            if spec.name in davis_names:
                exports["davis"] = _write_davis(root, _rerendered(clip, None if small else DAVIS_SIZE))
            if spec.name == figure_name:
                exports["vip"] = _write_vip(root, clip)
                exports["jhmdb"] = _write_jhmdb(root, _rerendered(clip, None if small else JHMDB_SIZE))
            clips.append({"spec": dataclasses.asdict(spec), "frames_sha256": _sha256(clip.frames_thwc),
                          "action": clip.action, "exports": exports})
        for entry, encode in zip(clips, encodes):
            entry["exports"] = {"video": encode.result()} | entry["exports"]
    _write_lists(root, clips)
    manifest = {
        "generator": "vmac_synthetic",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "small": small,
        "conventions": {
            "masks": "uint8 object ids, 0 background, topmost object wins",
            "parts": "uint8 VIP classes, index into part_classes",
            "keypoints": "x, y in 0-based pixel coordinates (pixel centres at integers), visible 0/1",
            "part_classes": list(PART_CLASSES),
            "joint_names": list(JOINT_NAMES),
        },
        "clips": clips,
    }
    write_atomic(root / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
    return manifest


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _rerendered(clip: SyntheticClip, size: tuple[int, int] | None) -> SyntheticClip:
    """The same scene rendered at (height, width): a re-render, not a resampling, so the labels
    stay exact. None keeps the clip as it is."""
    if size is None or size == (clip.spec.height, clip.spec.width):
        return clip
    return render_clip(dataclasses.replace(clip.spec, height=size[0], width=size[1]))


def _write_video(root: Path, clip: SyntheticClip) -> dict:
    path = root / "videos" / f"{clip.spec.name}.mp4"
    make_folder(path.parent)
    encode_h264(clip.frames_thwc, str(path), clip.spec.fps, crf=SAMPLE_CRF)
    return {"path": path.relative_to(root).as_posix(), "codec": "h264", "crf": SAMPLE_CRF,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "bytes": path.stat().st_size}


def _write_labels(root: Path, clip: SyntheticClip) -> dict:
    path = root / "labels" / f"{clip.spec.name}.npz"
    make_folder(path.parent)
    arrays = {"masks_thw": clip.masks_thw}
    if clip.parts_thw is not None:
        arrays |= {"parts_thw": clip.parts_thw, "keypoints_tj3": clip.keypoints_tj3}
    np.savez_compressed(path, **arrays)
    return {"path": path.relative_to(root).as_posix(), "arrays": sorted(arrays)}


def _export_record(frames_thwc: np.ndarray, **fields) -> dict:
    """What every benchmark export says about the frames it holds (raw rendered bytes)."""
    t, h, w, _ = frames_thwc.shape
    return {"height": h, "width": w, "frames": t, "frames_sha256": _sha256(frames_thwc), **fields}


def _write_davis(root: Path, clip: SyntheticClip) -> dict:
    """DAVIS-2017 layout: every frame annotated, palette PNGs of object ids."""
    seq = clip.spec.name
    images = root / "davis" / "JPEGImages" / "480p" / seq
    annotations = root / "davis" / "Annotations" / "480p" / seq
    make_folder(images)
    make_folder(annotations)
    for t in range(clip.spec.frames):
        Image.fromarray(clip.frames_thwc[t]).save(images / f"{t:05d}.jpg", quality=JPEG_QUALITY)
        mask = Image.fromarray(clip.masks_thw[t])
        mask.putpalette(DAVIS_PALETTE)  # turns the "L" image into a "P" image with DAVIS colours
        mask.save(annotations / f"{t:05d}.png")
    return _export_record(clip.frames_thwc, root="davis", sequence=seq, objects=clip.spec.n_objects)


def _write_vip(root: Path, clip: SyntheticClip) -> dict:
    """VIP layout: JPEG frames and greyscale class-id PNGs, 12-digit 1-based frame names."""
    video = clip.spec.name
    images = root / "vip" / "Images" / video
    categories = root / "vip" / "Annotations" / "Category_ids" / video
    make_folder(images)
    make_folder(categories)
    for t in range(clip.spec.frames):
        Image.fromarray(clip.frames_thwc[t]).save(images / f"{t + 1:012d}.jpg", quality=JPEG_QUALITY)
        Image.fromarray(clip.parts_thw[t]).save(categories / f"{t + 1:012d}.png")
    return _export_record(clip.frames_thwc, root="vip", video=video, classes=len(PART_CLASSES))


def _write_jhmdb(root: Path, clip: SyntheticClip) -> dict:
    """JHMDB layout: the first ``JHMDB_MAX_FRAMES`` frames as 1-based PNGs, and ``pos_img``
    (2, 15, T) float64 in pixel coordinates (the clip's keypoints, so 0-based)."""
    action, video = clip.action, clip.spec.name
    frames_thwc = clip.frames_thwc[:JHMDB_MAX_FRAMES]
    images = root / "jhmdb" / "Rename_Images" / action / video
    joints = root / "jhmdb" / "joint_positions" / action / video
    make_folder(images)
    make_folder(joints)
    for t, frame in enumerate(frames_thwc):
        Image.fromarray(frame).save(images / f"{t + 1:05d}.png", compress_level=PNG_COMPRESS_LEVEL)
    keypoints_tj3 = clip.keypoints_tj3[: len(frames_thwc)]
    pos_img = keypoints_tj3[:, :, :2].transpose(2, 1, 0).astype(np.float64)  # (T, 15, 2) → (2, 15, T)
    _write_mat(joints / "joint_positions.mat", {"pos_img": pos_img})
    return _export_record(frames_thwc, root="jhmdb", action=action, video=video)


def _write_mat(path: Path, arrays: dict) -> None:
    """scipy's MAT v5 file with a fixed header text: savemat stamps the creation time into the
    116-byte header, which would make two runs of one seed differ."""
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, arrays)
    data = bytearray(buffer.getvalue())
    data[:116] = b"MATLAB 5.0 MAT-file, written by vmac tasks.sample".ljust(116, b" ")
    write_atomic(path, bytes(data))


def _write_lists(root: Path, clips: list[dict]) -> None:
    """The split files each benchmark reader looks for."""
    davis = [c["exports"]["davis"]["sequence"] for c in clips if "davis" in c["exports"]]
    vip = [c["exports"]["vip"]["video"] for c in clips if "vip" in c["exports"]]
    jhmdb = [c["exports"]["jhmdb"] for c in clips if "jhmdb" in c["exports"]]
    _write_text(root / "davis" / "ImageSets" / "2017" / "val.txt", davis)
    _write_text(root / "vip" / "lists" / "val_videos.txt", vip)
    for action in sorted({record["action"] for record in jhmdb}):
        # JHMDB split lines are "<video>.avi <1 train | 2 test>".
        lines = [f"{r['video']}.avi 2" for r in jhmdb if r["action"] == action]
        _write_text(root / "jhmdb" / "splits" / f"{action}_test_split1.txt", lines)


def _write_text(path: Path, lines: list[str]) -> None:
    write_atomic(path, "".join(f"{line}\n" for line in lines))

