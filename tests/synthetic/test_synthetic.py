"""vmac_synthetic: determinism, label exactness, motion, and the sample's clip constraints."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from vmac_synthetic import (
    JOINT_NAMES,
    PART_CLASSES,
    ClipSpec,
    default_sample_specs,
    render_background,
    render_clip,
)

OBJECTS = ClipSpec("objects-test", 64, 112, 24, 24.0, "objects", 3, seed=11)
FIGURE = ClipSpec("figure-test", 96, 160, 24, 24.0, "figure", 2, seed=12)


@pytest.fixture(scope="module")
def objects_clip():
    return render_clip(OBJECTS)


@pytest.fixture(scope="module")
def figure_clip():
    return render_clip(FIGURE)


def test_core_module_imports_without_io_libraries():
    code = (
        "import sys, vmac_synthetic\n"
        "banned = ['PIL', 'scipy', 'av', 'ffmpeg', 'imageio_ffmpeg', 'zarr', 'prefect', 'dask']\n"
        "print([m for m in banned if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("spec", [OBJECTS, FIGURE], ids=["objects", "figure"])
def test_same_spec_renders_identical_bytes(spec):
    first, second = render_clip(spec), render_clip(spec)
    for name in ("frames_thwc", "masks_thw", "parts_thw", "keypoints_tj3"):
        a, b = getattr(first, name), getattr(second, name)
        assert (a is None) == (b is None)
        if a is not None:
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name
    assert first.action == second.action


def test_different_seed_renders_different_frames(objects_clip):
    other = render_clip(dataclasses.replace(OBJECTS, seed=OBJECTS.seed + 1))
    assert np.abs(other.frames_thwc.astype(int) - objects_clip.frames_thwc).mean() > 10


def test_shapes_and_dtypes(objects_clip, figure_clip):
    t, h, w = OBJECTS.frames, OBJECTS.height, OBJECTS.width
    assert objects_clip.frames_thwc.shape == (t, h, w, 3) and objects_clip.frames_thwc.dtype == np.uint8
    assert objects_clip.masks_thw.shape == (t, h, w) and objects_clip.masks_thw.dtype == np.uint8
    assert objects_clip.parts_thw is None and objects_clip.keypoints_tj3 is None and objects_clip.action is None
    t, h, w = FIGURE.frames, FIGURE.height, FIGURE.width
    assert figure_clip.parts_thw.shape == (t, h, w) and figure_clip.parts_thw.dtype == np.uint8
    assert figure_clip.keypoints_tj3.shape == (t, len(JOINT_NAMES), 3)
    assert figure_clip.keypoints_tj3.dtype == np.float32
    assert figure_clip.action in ("walk", "wave", "jump")


@pytest.mark.parametrize("spec", [OBJECTS, FIGURE], ids=["objects", "figure"])
def test_masks_agree_with_pixels(spec):
    """Background pixels are exactly the background render; object pixels are something else."""
    clip, background = render_clip(spec), render_background(spec)
    on_object = clip.masks_thw > 0
    assert on_object.mean() > 0.03
    assert np.array_equal(clip.frames_thwc[~on_object], background[~on_object])
    differs = np.abs(clip.frames_thwc.astype(int) - background).max(axis=-1) > 0
    assert differs[on_object].mean() > 0.98
    assert np.abs(clip.frames_thwc[on_object].astype(int) - background[on_object]).mean() > 15


def test_every_object_is_in_the_first_frame_and_objects_move(objects_clip):
    masks = objects_clip.masks_thw
    assert set(np.unique(masks[0])) == set(range(OBJECTS.n_objects + 1))
    for obj_id in range(1, OBJECTS.n_objects + 1):
        ys, xs = np.nonzero(masks[0] == obj_id)
        later = np.nonzero(masks[12] == obj_id)
        if len(later[0]):
            shift = np.hypot(later[1].mean() - xs.mean(), later[0].mean() - ys.mean())
            assert shift > 1.0, f"object {obj_id} does not move"


def test_one_object_leaves_the_view():
    spec = dataclasses.replace(OBJECTS, frames=48)
    masks = render_clip(spec).masks_thw
    present_last = set(np.unique(masks[-1])) - {0}
    assert len(present_last) < spec.n_objects


def test_background_moves():
    background = render_background(OBJECTS).astype(int)
    assert np.abs(background[0] - background[6]).mean() > 5


def test_same_scene_at_another_resolution():
    """A re-render at another size (the DAVIS 480p export's path) is the same scene.

    At three times the size, pixel (3i + 1, 3j + 1) has the same centre in scene units as
    pixel (i, j), so the labels agree there up to float rounding on edges.
    """
    for spec in (OBJECTS, FIGURE):
        base = dataclasses.replace(spec, frames=4, height=48, width=80)
        small = render_clip(base)
        large = render_clip(dataclasses.replace(base, height=144, width=240))
        assert (small.masks_thw == large.masks_thw[:, 1::3, 1::3]).mean() > 0.995
        if spec.kind == "figure":
            assert np.allclose(large.keypoints_tj3[..., :2], 3 * small.keypoints_tj3[..., :2] + 1, atol=1e-3)


def test_figure_parts_and_keypoints(figure_clip):
    masks, parts, keypoints = figure_clip.masks_thw, figure_clip.parts_thw, figure_clip.keypoints_tj3
    # Part classes label exactly the figure's (id 1) visible pixels.
    assert np.array_equal(parts > 0, masks == 1)
    classes = set(np.unique(parts).tolist())
    assert classes <= set(range(len(PART_CLASSES))) and len(classes - {0}) >= 8
    visible = keypoints[..., 2] == 1
    assert set(np.unique(keypoints[..., 2]).tolist()) <= {0.0, 1.0}
    assert visible.mean() > 0.8
    x, y = keypoints[..., 0][visible], keypoints[..., 1][visible]
    assert (x >= 0).all() and (x <= FIGURE.width - 1).all() and (y >= 0).all() and (y <= FIGURE.height - 1).all()
    # A visible joint sits on a figure pixel.
    t_idx = np.nonzero(visible)[0]
    assert (masks[t_idx, np.rint(y).astype(int), np.rint(x).astype(int)] == 1).all()
    # Skeleton sanity: face above neck above belly (y grows downwards), joints move over time.
    assert (keypoints[:, 2, 1] < keypoints[:, 0, 1]).all() and (keypoints[:, 0, 1] < keypoints[:, 1, 1]).all()
    assert np.abs(np.diff(keypoints[:, 3:, :2], axis=0)).max() > 0.5


@pytest.mark.parametrize("small", [False, True])
def test_default_sample_specs(small):
    specs = default_sample_specs(0, small=small)
    assert specs == default_sample_specs(0, small=small)
    assert [s.seed for s in specs] != [s.seed for s in default_sample_specs(1, small=small)]
    assert len({s.name for s in specs}) == len(specs)
    assert sum(s.kind == "objects" for s in specs) >= 2 and any(s.kind == "figure" for s in specs)
    assert all(s.height % 2 == 0 and s.width % 2 == 0 for s in specs)  # x264 yuv420p needs even sizes
    if not small:
        assert 6 <= len(specs) <= 10
        assert all(64 <= s.frames <= 128 and min(s.height, s.width) >= 256 for s in specs)


def test_spec_validation():
    with pytest.raises(ValueError):
        ClipSpec("x", 64, 64, 8, 24.0, "people", 1, 0)
    with pytest.raises(ValueError):
        ClipSpec("x", 64, 64, 8, 24.0, "figure", 0, 0)
