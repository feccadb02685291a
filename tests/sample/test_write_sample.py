"""tasks.sample.write_sample: the exact layout on disk, labels, MP4s and byte-level determinism.

Uses the small variant (4 clips × 32 frames at 128×224); the default sample only differs in
clip sizes and in re-rendering the DAVIS/JHMDB exports at 480×854 and 240×320.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import scipy.io
from PIL import Image

from storage_schemas.palette import DAVIS_PALETTE
from tasks.sample.write import JHMDB_MAX_FRAMES, MANIFEST_NAME, write_sample
from vmac_synthetic import ClipSpec, default_sample_specs, render_clip

SEED = 3


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("sample")
    return root, write_sample(root, seed=SEED, small=True)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_top_level_layout_and_manifest(sample):
    root, manifest = sample
    assert sorted(p.name for p in root.iterdir()) == ["davis", "jhmdb", "labels", MANIFEST_NAME, "videos", "vip"]
    assert json.loads((root / MANIFEST_NAME).read_text()) == manifest
    assert manifest["seed"] == SEED and manifest["small"] is True
    specs = default_sample_specs(SEED, small=True)
    assert [ClipSpec(**c["spec"]) for c in manifest["clips"]] == specs
    names = [s.name for s in specs]
    assert sorted(p.name for p in (root / "videos").iterdir()) == sorted(f"{n}.mp4" for n in names)
    assert sorted(p.name for p in (root / "labels").iterdir()) == sorted(f"{n}.npz" for n in names)
    exported = {key: [c["spec"]["name"] for c in manifest["clips"] if key in c["exports"]]
                for key in ("video", "labels", "davis", "vip", "jhmdb")}
    assert exported["video"] == names and exported["labels"] == names
    assert len(exported["davis"]) == 2 and len(exported["vip"]) == 1 and exported["jhmdb"] == exported["vip"]


def test_manifest_hashes_are_of_the_rendered_frames(sample):
    import hashlib

    _, manifest = sample
    entry = manifest["clips"][0]
    clip = render_clip(ClipSpec(**entry["spec"]))
    assert hashlib.sha256(clip.frames_thwc.tobytes()).hexdigest() == entry["frames_sha256"]


def test_labels_npz(sample):
    root, manifest = sample
    for entry in manifest["clips"]:
        spec = entry["spec"]
        with np.load(root / entry["exports"]["labels"]["path"]) as labels:
            masks = labels["masks_thw"]
            assert masks.shape == (spec["frames"], spec["height"], spec["width"]) and masks.dtype == np.uint8
            assert masks.max() <= spec["n_objects"]
            if spec["kind"] == "figure":
                assert labels["parts_thw"].shape == masks.shape
                assert labels["keypoints_tj3"].shape == (spec["frames"], 15, 3)
            else:
                assert sorted(labels.files) == ["masks_thw"]


def test_mp4s_decode_to_the_rendered_frames(sample):
    root, manifest = sample
    for entry in manifest["clips"]:
        spec = entry["spec"]
        with av.open(str(root / entry["exports"]["video"]["path"])) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        assert frames.shape == (spec["frames"], spec["height"], spec["width"], 3)
        rendered = render_clip(ClipSpec(**spec)).frames_thwc
        mse = np.mean((frames.astype(float) - rendered) ** 2)
        assert 10 * np.log10(255**2 / mse) > 28  # PSNR in dB: the encode is faithful


def test_davis_layout(sample):
    root, manifest = sample
    davis = root / "davis"
    entries = [c for c in manifest["clips"] if "davis" in c["exports"]]
    seqs = [c["exports"]["davis"]["sequence"] for c in entries]
    assert (davis / "ImageSets" / "2017" / "val.txt").read_text().split() == seqs
    assert sorted(p.name for p in (davis / "JPEGImages" / "480p").iterdir()) == sorted(seqs)
    for entry, seq in zip(entries, seqs):
        t = entry["exports"]["davis"]["frames"]
        names = [f"{i:05d}" for i in range(t)]
        assert sorted(p.name for p in (davis / "JPEGImages" / "480p" / seq).iterdir()) == [f"{n}.jpg" for n in names]
        assert sorted(p.name for p in (davis / "Annotations" / "480p" / seq).iterdir()) == [f"{n}.png" for n in names]
        with np.load(root / entry["exports"]["labels"]["path"]) as labels:
            masks = labels["masks_thw"]
        for i in (0, t // 2, t - 1):
            annotation = Image.open(davis / "Annotations" / "480p" / seq / f"{i:05d}.png")
            assert annotation.mode == "P"
            assert bytes(annotation.getpalette()[:3 * 4]) == DAVIS_PALETTE[:12]
            assert np.array_equal(np.asarray(annotation), masks[i])
        first = np.asarray(Image.open(davis / "Annotations" / "480p" / seq / "00000.png"))
        assert set(np.unique(first).tolist()) == set(range(entry["spec"]["n_objects"] + 1))
        image = Image.open(davis / "JPEGImages" / "480p" / seq / "00000.jpg")
        assert image.format == "JPEG" and image.mode == "RGB"
        assert image.size == (entry["exports"]["davis"]["width"], entry["exports"]["davis"]["height"])


def test_vip_layout(sample):
    root, manifest = sample
    vip = root / "vip"
    (entry,) = [c for c in manifest["clips"] if "vip" in c["exports"]]
    video = entry["exports"]["vip"]["video"]
    assert (vip / "lists" / "val_videos.txt").read_text().split() == [video]
    names = [f"{i + 1:012d}" for i in range(entry["spec"]["frames"])]
    assert sorted(p.name for p in (vip / "Images" / video).iterdir()) == [f"{n}.jpg" for n in names]
    categories = vip / "Annotations" / "Category_ids" / video
    assert sorted(p.name for p in categories.iterdir()) == [f"{n}.png" for n in names]
    with np.load(root / entry["exports"]["labels"]["path"]) as labels:
        parts = labels["parts_thw"]
    for i in (0, len(names) - 1):
        annotation = Image.open(categories / f"{names[i]}.png")
        assert annotation.mode == "L"
        ids = np.asarray(annotation)
        assert np.array_equal(ids, parts[i]) and ids.max() < 20 and len(np.unique(ids)) >= 6


def test_jhmdb_layout(sample):
    root, manifest = sample
    (entry,) = [c for c in manifest["clips"] if "jhmdb" in c["exports"]]
    export = entry["exports"]["jhmdb"]
    action, video = export["action"], export["video"]
    assert action == entry["action"]
    frames_dir = root / "jhmdb" / "Rename_Images" / action / video
    t = min(entry["spec"]["frames"], JHMDB_MAX_FRAMES)
    assert export["frames"] == t
    assert sorted(p.name for p in frames_dir.iterdir()) == [f"{i + 1:05d}.png" for i in range(t)]
    assert Image.open(frames_dir / "00001.png").size == (export["width"], export["height"])
    mat = scipy.io.loadmat(root / "jhmdb" / "joint_positions" / action / video / "joint_positions.mat")
    pos_img = mat["pos_img"]
    assert pos_img.shape == (2, 15, t)
    with np.load(root / entry["exports"]["labels"]["path"]) as labels:
        keypoints = labels["keypoints_tj3"][:t]
    assert np.allclose(pos_img, keypoints[:, :, :2].transpose(2, 1, 0))
    split = root / "jhmdb" / "splits" / f"{action}_test_split1.txt"
    assert split.read_text() == f"{video}.avi 2\n"


def test_same_seed_writes_identical_files(sample, tmp_path):
    """Every byte, MP4s and .mat files included (x264 runs single-threaded, the .mat header is fixed)."""
    root, _ = sample
    write_sample(tmp_path, seed=SEED, small=True)
    first, second = _files(root), _files(tmp_path)
    assert sorted(first) == sorted(second)
    assert [name for name in first if first[name] != second[name]] == []
