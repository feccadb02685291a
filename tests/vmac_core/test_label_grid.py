"""Labels on the propagation grid (vmac_core.label_grid): one-hot area averages, bilinear argmax,
keypoint heatmaps, and the round trips from stored-resolution labels through a Geometry."""

import numpy as np
import pytest
import torch

from vmac_core.label_grid import (
    geometry_for,
    heatmaps_to_keypoints,
    ids_to_labels,
    keypoints_to_heatmaps,
    keypoints_to_labels,
    labels_to_ids,
    labels_to_keypoints,
    labels_to_onehot,
    probs_to_labels,
)

# ----------------------------------------------------------------------------- feature resolution


def test_labels_to_onehot_hand_computed():
    # 4x4 labels -> 2x2 cells of 2x2 pixels; 255 (void) belongs to no class.
    labels = torch.tensor([[0, 0, 1, 1],
                           [0, 1, 1, 1],
                           [2, 2, 255, 0],
                           [2, 2, 0, 0]])
    onehot = labels_to_onehot(labels, num_classes=3, size=(2, 2))
    assert onehot.shape == (3, 2, 2)
    # top-left cell: 0,0,0,1 -> (3/4, 1/4, 0); top-right: all 1; bottom-left: all 2;
    # bottom-right: 255,0,0,0 -> (3/4, 0, 0), the void quarter counted nowhere.
    expected = torch.tensor([[[0.75, 0.0], [0.0, 0.75]],
                             [[0.25, 1.0], [0.0, 0.0]],
                             [[0.0, 0.0], [1.0, 0.0]]])
    torch.testing.assert_close(onehot, expected)


def test_probs_to_labels_bilinear_then_argmax():
    # Two columns: left cell class 0 (0.9), right cell class 1 (0.8). Bilinear upsampling
    # to 8 px wide (align_corners=False) crosses 0.5 exactly halfway: left 4 px class 0.
    probs = torch.tensor([[[0.9, 0.2]], [[0.1, 0.8]]])
    out = probs_to_labels(probs, (2, 8))
    assert out.dtype == torch.long and out.shape == (2, 8)
    # Column x samples source u = (x + 0.5) / 4 - 0.5: p0 - p1 = 0.8 - 1.4 * clamp(u, 0, 1).
    np.testing.assert_array_equal(out[0].numpy(), [0, 0, 0, 0, 1, 1, 1, 1])


def test_onehot_roundtrip_recovers_aligned_labels():
    # Bands aligned to the 8-px cells come back exactly: pixel x samples cell coordinate
    # (x + 0.5) / 8 - 0.5, so the two cells across an edge swap weight exactly at the edge.
    # (At a rectangle's corners bilinear + argmax can lose a few pixels: the three outside
    # cells outweigh the inside one. That is the protocol, not tested here.)
    labels = torch.zeros(64, 96, dtype=torch.long)
    labels[16:40] = 1
    labels[40:] = 2
    back = probs_to_labels(labels_to_onehot(labels, 3, (8, 12)), (64, 96))
    assert torch.equal(back, labels)


def test_keypoint_heatmaps_roundtrip():
    image, feat = (240, 320), (30, 40)  # stride 8
    # Joint 0 at a cell centre (pixel 8 * 5 + 3.5 = 43.5), joint 1 between cells, joint 2 invisible.
    kp = torch.tensor([[43.5, 83.5, 1.0], [101.0, 57.0, 1.0], [10.0, 10.0, 0.0]])
    heat = keypoints_to_heatmaps(kp, image, feat)  # default sigma 0.5 cells, as CRW
    assert heat.shape == (3, 30, 40)
    assert heat[0].max() == pytest.approx(1.0) and heat[0, 10, 5] == pytest.approx(1.0)
    assert heat[2].abs().sum() == 0
    xy = heatmaps_to_keypoints(heat, image)
    # Back within half a cell (4 px). Not exact even at a cell centre: CRW's top-3 weighted
    # mean takes the centre plus two of its four equal neighbours, which need not be opposite.
    assert (xy[:2] - kp[:2, :2]).abs().max() < 4.0
    assert torch.isnan(xy[2]).all()
    # A map with a single hot cell comes back at that cell's centre pixel.
    one = torch.zeros(1, 30, 40)
    one[0, 10, 5] = 1.0
    torch.testing.assert_close(heatmaps_to_keypoints(one, image)[0], torch.tensor([43.5, 83.5]))


# ----------------------------------------------------------------------------- through a Geometry


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return ys.min(), ys.max(), xs.min(), xs.max()


@pytest.mark.parametrize("short_side", [None, 38])
def test_labels_round_trip_through_the_feature_grid(short_side):
    """Ids on 8-px (16-px when halved) blocks come back from ids -> grid -> ids in place, for a
    frame that is not a multiple of 8 or 32, with and without resizing: the same bounding boxes
    (a half-cell misalignment would move them), differing only where bilinear upsampling rounds
    the corners."""
    geom = geometry_for((76, 100), stride=8, short_side=short_side)
    block = 8 if short_side is None else 16
    ids = np.zeros((76, 100), np.uint8)
    ids[block:3 * block, block:4 * block] = 1
    ids[3 * block:, 5 * block:] = 2  # touches the bottom and right edges, into the partial cells
    assert geom.padded[0] % 32 == 0 and geom.padded[1] % 32 == 0
    assert geom.feature == (-(-geom.input[0] // 8), -(-geom.input[1] // 8))
    labels = ids_to_labels(ids, 3, geom)
    assert labels.shape == (3, *geom.feature)
    back = labels_to_ids(labels, geom)
    assert back.shape == ids.shape
    for k in (1, 2):
        assert _bbox(back == k) == _bbox(ids == k)
    assert (back != ids).mean() < 0.01 * (block / 8) ** 2  # corner pixels only


@pytest.mark.parametrize("short_side", [None, 38])
def test_keypoints_round_trip_within_half_a_cell(short_side):
    geom = geometry_for((76, 100), stride=8, short_side=short_side)
    rng = np.random.default_rng(0)
    kp = np.concatenate([rng.uniform([0, 0], [99, 75], (15, 2)), np.ones((15, 1))], axis=1).astype(np.float32)
    kp[3, 2] = 0  # an invisible joint gets an empty map, read back as NaN
    xy = labels_to_keypoints(keypoints_to_labels(kp, geom, sigma=0.5), geom, topk=3)
    visible = kp[:, 2] > 0
    cell = 8 / geom.scale[0]
    assert np.abs(xy[visible] - kp[visible, :2]).max() < cell / 2
    assert np.isnan(xy[3]).all()


def test_unannotated_pixels_and_the_padding_count_for_no_label():
    # 20 x 20 at stride 8: 3 x 3 cells covering 24 x 24, so the last row and column of cells are
    # 4 px image and 4 px padding. Left half object 1, a 255 (not annotated) band at the bottom.
    geom = geometry_for((20, 20), stride=8)
    ids = np.zeros((20, 20), np.uint8)
    ids[:, :10] = 1
    ids[16:] = 255
    total = ids_to_labels(ids, 2, geom).sum(0)  # (3, 3): the labelled fraction of each cell
    expected = torch.tensor([[1.0, 1.0, 0.5],
                             [1.0, 1.0, 0.5],
                             [0.0, 0.0, 0.0]])
    torch.testing.assert_close(total, expected)
