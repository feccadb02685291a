"""Hand-computed cases for the DAVIS, VIP and JHMDB metrics in vmac_core.metrics."""

import math

import numpy as np
import pytest
import torch

from vmac_core.metrics import (
    boundary_f_measure,
    class_iou,
    confusion_matrix,
    davis_sequence_scores,
    davis_summary,
    db_statistics,
    dilate,
    disk,
    miou,
    pck,
    pck_summary,
    region_jaccard,
    resize_labels_nearest,
    seg2bmap,
)


def square(size, top, left, side):
    m = np.zeros(size, dtype=bool)
    m[top:top + side, left:left + side] = True
    return m


# ----------------------------------------------------------------------------- J


def test_jaccard_hand_computed():
    # gt: 3x3 square at cols 2-4, pred: the same shifted right by 2 (cols 4-6).
    # Intersection = col 4, 3 pixels; union = 9 + 9 - 3 = 15 -> J = 0.2.
    gt = square((10, 10), 2, 2, 3)
    pred = square((10, 10), 2, 4, 3)
    assert region_jaccard(gt[None], pred[None])[0] == pytest.approx(0.2)


def test_jaccard_empty_cases():
    empty = np.zeros((1, 5, 5), dtype=bool)
    full = np.ones((1, 5, 5), dtype=bool)
    assert region_jaccard(empty, empty)[0] == 1.0  # empty on empty scores 1
    assert region_jaccard(empty, full)[0] == 0.0
    assert region_jaccard(full, empty)[0] == 0.0


# ----------------------------------------------------------------------------- F


def test_seg2bmap_is_a_ring_shifted_towards_the_origin():
    # A 3x3 square at rows/cols 2-4: a pixel is a boundary if it differs from its E, S or
    # SE neighbour, giving the ring of the 4x4 square at rows/cols 1-4 (16 - 4 = 12 px).
    b = seg2bmap(square((10, 10), 2, 2, 3))
    ring = square((10, 10), 1, 1, 4) & ~square((10, 10), 2, 2, 2)
    np.testing.assert_array_equal(b, ring)
    assert b.sum() == 12


def test_seg2bmap_image_edges():
    # A mask filling the image has no boundary: interior pixels match E/S/SE, the last
    # row is compared only with its E neighbour, the last column only with its S one,
    # and the bottom-right pixel is cleared.
    assert seg2bmap(np.ones((4, 5), dtype=bool)).sum() == 0
    # Mask = the last column only. Column 3 differs from its E and SE neighbours in every
    # row (4 px); the last column's own pixels match their S neighbour (rows 0-2) or are the
    # corner (row 3). The last row: (3, 3) differs from E -> already counted. Total 4.
    m = np.zeros((4, 5), dtype=bool)
    m[:, -1] = True
    b = seg2bmap(m)
    assert b.sum() == 4 and b[:, 3].all()


def test_disk_matches_skimage_definition():
    # skimage.morphology.disk(1) is a plus sign; disk(2) is 5x5 minus the corners.
    np.testing.assert_array_equal(disk(1), np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool))
    d2 = disk(2)
    assert d2.shape == (5, 5) and d2.sum() == 13
    assert not d2[0, 0] and d2[0, 2] and d2[1, 1]


@pytest.mark.parametrize("radius", [0, 1, 3, 8])
def test_dilate_equals_or_of_disk_shifts(radius):
    rng = np.random.default_rng(radius)
    masks = rng.random((3, 23, 31)) > 0.97
    masks[0, 0, 0] = masks[1, -1, -1] = True  # corners exercise the zero border
    expected = np.zeros_like(masks)
    h, w = masks.shape[1:]
    for dy, dx in zip(*np.nonzero(disk(radius))):
        dy, dx = dy - radius, dx - radius
        shifted = np.zeros_like(masks)
        shifted[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            masks[:, max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
        expected |= shifted
    np.testing.assert_array_equal(dilate(masks, radius), expected)


def test_boundary_f_hand_computed():
    # 10x10 image: tolerance = ceil(0.008 * sqrt(200)) = ceil(0.113) = 1 px (plus-shaped disk).
    # gt boundary = ring of rows/cols 1-4; pred (gt shifted right by 2) = ring rows 1-4, cols 3-6.
    # Precision: pred ring pixels within 1 px (4-neighbourhood) of the gt ring:
    #   row 1: (1,3) (1,4) on it, (1,5) next to (1,4), (1,6) not -> 3; row 4 likewise -> 3;
    #   col 3 rows 2,3 next to (r,4) -> 2; col 6 rows 2,3 not -> 0.  8 / 12.
    # Recall: gt ring pixels within 1 px of the pred ring:
    #   row 1: (1,1) no, (1,2) next to (1,3), (1,3) (1,4) yes -> 3; row 4 -> 3;
    #   col 1 rows 2,3 no -> 0; col 4 rows 2,3 next to (r,3) -> 2.  8 / 12.
    # F = 2PR / (P + R) = 2/3.
    gt = square((10, 10), 2, 2, 3)
    pred = square((10, 10), 2, 4, 3)
    assert boundary_f_measure(gt[None], pred[None])[0] == pytest.approx(2 / 3)


def test_boundary_f_tolerance_scales_with_diagonal():
    # 480x854 (DAVIS 480p): ceil(0.008 * 979.65) = 8 px. A 7-px shift is within tolerance
    # everywhere except at the short edges' ends? No: shifting a square right by 7 moves the
    # left/right edges by 7 <= 8 and keeps top/bottom edges overlapping, so F = 1; by 9 the
    # left/right edges fall outside and F < 1.
    assert math.ceil(0.008 * math.hypot(480, 854)) == 8
    gt = square((480, 854), 100, 100, 200)
    assert boundary_f_measure(gt[None], square((480, 854), 100, 107, 200)[None])[0] == pytest.approx(1.0)
    assert boundary_f_measure(gt[None], square((480, 854), 100, 109, 200)[None])[0] < 0.999


def test_boundary_f_empty_cases():
    empty = np.zeros((1, 10, 10), dtype=bool)
    obj = square((10, 10), 2, 2, 3)[None]
    assert boundary_f_measure(empty, empty)[0] == 1.0  # nothing to find, nothing found
    assert boundary_f_measure(obj, empty)[0] == 0.0  # object missed
    assert boundary_f_measure(empty, obj)[0] == 0.0  # object hallucinated


# ----------------------------------------------------------------------------- statistics


def test_db_statistics_hand_computed():
    # N = 8: edges = round(linspace(1, 8, 5) + 1e-10) - 1 = round([1, 2.75, 4.5, 6.25, 8]) - 1
    #       = [1, 3, 5, 6, 8] - 1 = [0, 2, 4, 5, 7]; first bin = v[0:3], last bin = v[5:8].
    v = np.array([1, 1, 1, 0.5, 0.5, 0, 0, 0.3])
    mean, recall, decay = db_statistics(v)
    assert mean == pytest.approx(4.3 / 8)
    assert recall == pytest.approx(3 / 8)  # strictly > 0.5: the three 1s
    assert decay == pytest.approx(1.0 - 0.1)  # mean(1,1,1) - mean(0,0,0.3)


def test_db_statistics_empty_is_nan():
    assert all(math.isnan(x) for x in db_statistics(np.array([])))


def test_davis_sequence_excludes_first_and_last_frames():
    # 4 frames, one object. Frames 0 and 3 are wrong on purpose but not scored; frame 1
    # is perfect (J = 1), frame 2 is the 3x3 square shifted by 2 (J = 0.2, F = 2/3).
    gt = np.zeros((4, 10, 10), dtype=np.uint8)
    gt[:, 2:5, 2:5] = 1
    pred = np.zeros_like(gt)
    pred[1, 2:5, 2:5] = 1
    pred[2, 2:5, 4:7] = 1
    s = davis_sequence_scores(pred, gt)
    obj = s["objects"][1]
    assert s["num_frames_scored"] == 2
    assert obj["J"] == pytest.approx([1.0, 0.2])
    assert obj["F"] == pytest.approx([1.0, 2 / 3])
    assert obj["J_mean"] == pytest.approx(0.6)
    assert obj["J_recall"] == pytest.approx(0.5)
    # N = 2: edges round(linspace(1, 2, 5)) - 1 = [0, 0, 0, 1, 1] (1.5 rounds to 2):
    # first bin v[0:1] = [1], last bin v[1:2] = [0.2] -> decay 0.8.
    assert obj["J_decay"] == pytest.approx(0.8)
    assert s["JF_mean"] == pytest.approx((0.6 + (1 + 2 / 3) / 2) / 2)


def test_davis_object_out_of_view_and_void():
    # Object 2 leaves the view in frame 2; predicting nothing there scores J = F = 1.
    # 255 (void) in the ground truth is background, as in davis2017-evaluation.
    gt = np.zeros((4, 12, 12), dtype=np.uint8)
    gt[:, 1:4, 1:4] = 1
    gt[:2, 7:10, 7:10] = 2
    gt[:, 11, :] = 255
    pred = gt.copy()
    pred[pred == 255] = 0
    s = davis_sequence_scores(pred, gt)
    assert sorted(s["objects"]) == [1, 2]  # ids 1..max(gt[0] without void)
    assert s["objects"][2]["J"] == [1.0, 1.0]
    assert s["objects"][2]["F"] == [1.0, 1.0]
    # Predicting object 2 where it is out of view scores 0 on that frame.
    pred[2, 7:10, 7:10] = 2
    s = davis_sequence_scores(pred, gt)
    assert s["objects"][2]["J"] == [1.0, 0.0]
    assert s["objects"][2]["F"] == [1.0, 0.0]


def test_davis_summary_averages_objects_not_sequences():
    # Sequence A has two objects with J_mean 1 and 0; sequence B one object with 1.
    # Object mean = 2/3 (davis2017-evaluation), sequence mean would be 3/4.
    def seq(js):
        return {"objects": {i + 1: {"J_mean": j, "J_recall": j, "J_decay": 0.0,
                                    "F_mean": j, "F_recall": j, "F_decay": 0.0}
                            for i, j in enumerate(js)}}
    summary = davis_summary([seq([1.0, 0.0]), seq([1.0])])
    assert summary["J_mean"] == pytest.approx(2 / 3)
    assert summary["F_mean"] == pytest.approx(2 / 3)
    assert summary["JF_mean"] == pytest.approx(2 / 3)
    assert summary["num_objects"] == 3
    assert set(summary) >= {"J_mean", "J_recall", "J_decay", "F_mean", "F_recall", "F_decay", "JF_mean"}


def test_davis_accepts_torch():
    gt = torch.zeros(3, 8, 8, dtype=torch.long)
    gt[:, 2:6, 2:6] = 1
    assert davis_sequence_scores(gt.clone(), gt)["JF_mean"] == 1.0


# ----------------------------------------------------------------------------- VIP


def test_confusion_and_miou_hand_computed():
    # Two frames, 3 classes, one void pixel (255) that must be ignored.
    gt = np.array([[[0, 0, 1, 1]], [[2, 2, 1, 255]]])
    pred = np.array([[[0, 1, 1, 1]], [[2, 0, 1, 2]]])
    cm = confusion_matrix(pred, gt, num_classes=3)
    # rows = gt, cols = pred:
    #   gt 0: pred 0, 1            -> [1, 1, 0]
    #   gt 1: pred 1, 1, 1         -> [0, 3, 0]
    #   gt 2: pred 2, 0            -> [1, 0, 1]
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 3, 0], [1, 0, 1]])
    # IoU: class 0: 1 / (2 + 2 - 1) = 1/3; class 1: 3 / (3 + 4 - 3) = 3/4; class 2: 1 / (2 + 1 - 1) = 1/2.
    np.testing.assert_allclose(class_iou(cm), [1 / 3, 3 / 4, 1 / 2])
    assert miou(cm) == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)
    # Summing per-frame matrices is the same as one matrix over all frames.
    summed = confusion_matrix(pred[0], gt[0], 3) + confusion_matrix(pred[1], gt[1], 3)
    np.testing.assert_array_equal(summed, cm)


def test_miou_skips_absent_classes_and_rejects_bad_ids():
    cm = confusion_matrix(np.array([0, 0, 1]), np.array([0, 0, 1]), num_classes=4)
    assert miou(cm) == 1.0  # classes 2 and 3 never appear: left out, not counted as 0
    with pytest.raises(ValueError):
        confusion_matrix(np.array([5]), np.array([0]), num_classes=4)
    # Without an ignore index, 255 is an error rather than silently dropped.
    with pytest.raises(ValueError):
        confusion_matrix(np.array([0]), np.array([255]), num_classes=4, ignore_index=None)


def test_resize_labels_nearest():
    small = torch.tensor([[1, 2], [3, 255]], dtype=torch.uint8)
    big = resize_labels_nearest(small, (4, 4))
    assert big.dtype == torch.uint8
    np.testing.assert_array_equal(big.numpy(), [[1, 1, 2, 2], [1, 1, 2, 2],
                                                [3, 3, 255, 255], [3, 3, 255, 255]])
    # Downsizing picks source index floor(dst * in / out): rows/cols 0 and 2 of a 4x4.
    x = torch.arange(16).view(4, 4)
    np.testing.assert_array_equal(resize_labels_nearest(x, (2, 2)).numpy(), [[0, 2], [8, 10]])


# ----------------------------------------------------------------------------- JHMDB


def test_pck_hand_computed():
    # Frame 1 gt joints (0,0), (30,40), (10,10): box 30 x 40, diagonal 50, scale 0.6 * 50 = 30,
    # thresholds 3 px (alpha 0.1) and 6 px (alpha 0.2).
    # pred errors: joint 0 by 2 px (both), joint 1 by 5 px (0.2 only), joint 2 by 10 px (none).
    gt = np.array([[[0, 0], [0, 0], [0, 0]],
                   [[0, 0], [30, 40], [10, 10]]], dtype=float)
    pred = np.array([[[99, 99], [99, 99], [99, 99]],  # frame 0 is never scored
                     [[2, 0], [30, 45], [10, 20]]], dtype=float)
    res = pck(pred, gt)
    assert res["pck@0.1"] == pytest.approx(1 / 3)
    assert res["pck@0.2"] == pytest.approx(2 / 3)
    assert res["total"] == [1, 1, 1]
    # Joint 2 invisible in frame 1: it is not scored; the box of the visible joints is the same.
    vis = np.array([[1, 1, 1], [1, 1, 0]])
    res = pck(pred, gt, vis)
    assert res["total"] == [1, 1, 0]
    assert res["pck@0.1"] == pytest.approx(0.5)  # mean over scored joints: (1 + 0) / 2
    assert res["pck@0.2"] == pytest.approx(1.0)


def test_pck_box_uses_visible_joints_only_and_nan_is_wrong():
    # Frame 1: visible joints (0,0) and (6,8): diagonal 10, scale 6, alpha 0.1 -> 0.6 px.
    # The invisible joint at (100, 100) must not enlarge the box.
    gt = np.array([[[0, 0], [6, 8], [100, 100]]] * 2, dtype=float)
    pred = gt.copy()
    pred[1, 0] = [0.5, 0]  # 0.5 <= 0.6: correct
    pred[1, 1] = [np.nan, np.nan]  # lost joint: wrong
    res = pck(pred, gt, np.array([[1, 1, 0]] * 2), alphas=(0.1,))
    assert res["correct@0.1"] == [1, 0, 0]
    assert res["pck@0.1"] == pytest.approx(0.5)


def test_pck_summary_pools_per_joint_then_averages_joints():
    # Clip A: joint 0 correct 1/1, joint 1 correct 0/1. Clip B: joint 0 correct 0/3, joint 1 3/3.
    # Pooled per joint: 1/4 and 3/4 -> mean 0.5 (eval_pck.py's computePCK).
    a = {"total": [1, 1], "correct@0.1": [1, 0], "correct@0.2": [1, 1]}
    b = {"total": [3, 3], "correct@0.1": [0, 3], "correct@0.2": [3, 3]}
    res = pck_summary([a, b])
    assert res["pck@0.1"] == pytest.approx(0.5)
    assert res["pck@0.2"] == pytest.approx(1.0)
