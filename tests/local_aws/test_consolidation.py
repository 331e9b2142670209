"""Consolidation of several workers' boxes: matching by IoU, support, fusion and confidence."""

from __future__ import annotations

import numpy as np
import pytest

from local_aws.boxes import PixelBox, iou_matrix
from local_aws.groundtruth.consolidation import consolidate, min_support

WIDTH, HEIGHT = 640, 480
BIRD = PixelBox("Bird", 100, 120, 80, 60)
OTHER_BIRD = PixelBox("Bird", 400, 200, 120, 90)


def _iou(a: PixelBox, b: PixelBox) -> float:
    return float(iou_matrix(np.array([a.xyxy]), np.array([b.xyxy]))[0, 0])


def _shifted(box: PixelBox, dx: int = 0, dy: int = 0, dw: int = 0, dh: int = 0, label: str = "") -> PixelBox:
    return PixelBox(label or box.label, box.left + dx, box.top + dy, box.width + dw, box.height + dh)


def test_identical_boxes_give_the_same_box_with_full_confidence():
    result = consolidate([[BIRD, OTHER_BIRD]] * 5, WIDTH, HEIGHT)
    assert [c.box for c in result] == [BIRD, OTHER_BIRD]
    assert [c.confidence for c in result] == [1.0, 1.0]
    assert [c.support for c in result] == [5, 5]


def test_a_single_worker_keeps_every_box_with_confidence_zero():
    stray = PixelBox("Bird", 10, 10, 20, 20)
    result = consolidate([[BIRD, stray]], WIDTH, HEIGHT)
    assert [c.box for c in result] == [BIRD, stray]
    assert all(c.confidence == 0.0 for c in result)


def test_a_spurious_box_of_one_worker_among_five_is_dropped():
    stray = PixelBox("Bird", 500, 20, 60, 40)
    answers = [[BIRD], [_shifted(BIRD, dx=2)], [_shifted(BIRD, dy=-3), stray], [_shifted(BIRD, dw=4)], [BIRD]]
    result = consolidate(answers, WIDTH, HEIGHT)
    assert len(result) == 1
    assert _iou(result[0].box, BIRD) > 0.95
    assert result[0].support == 5


def test_two_workers_keep_every_box_and_agreement_raises_confidence():
    lone = PixelBox("Bird", 500, 20, 60, 40)
    result = consolidate([[BIRD, lone], [_shifted(BIRD, dx=3)]], WIDTH, HEIGHT)
    assert len(result) == 2
    agreed, alone = result
    assert agreed.support == 2 and alone.support == 1
    assert alone.box == lone
    assert agreed.confidence > alone.confidence == 0.5


def test_confidence_rises_with_support_and_with_agreement():
    tight = consolidate([[BIRD]] * 5, WIDTH, HEIGHT)[0].confidence
    loose = consolidate([[_shifted(BIRD, dx=d)] for d in (-12, -6, 0, 6, 12)], WIDTH, HEIGHT)[0].confidence
    fewer = consolidate([[BIRD]] * 3 + [[]] * 2, WIDTH, HEIGHT)[0].confidence
    assert tight > loose > 0.0
    assert tight > fewer == 0.6
    assert all(0.0 <= c <= 1.0 for c in (tight, loose, fewer))


def test_fusion_averages_jittered_boxes_closer_to_the_truth_than_the_workers():
    rng = np.random.default_rng(3)
    truth = np.array(OTHER_BIRD.xyxy)
    worker_ious, fused_ious = [], []
    for _ in range(50):
        drawn = [np.round(truth + rng.normal(0.0, 8.0, 4)).astype(int) for _ in range(5)]
        answers = [[PixelBox("Bird", x0, y0, x1 - x0, y1 - y0)] for x0, y0, x1, y1 in drawn]
        (fused,) = consolidate(answers, WIDTH, HEIGHT)
        worker_ious.extend(_iou(a[0], OTHER_BIRD) for a in answers)
        fused_ious.append(_iou(fused.box, OTHER_BIRD))
    assert np.mean(fused_ious) > np.mean(worker_ious) + 0.03


def test_one_sloppy_edge_does_not_drag_the_fused_box():
    sloppy = PixelBox("Bird", BIRD.left, BIRD.top, BIRD.width + 40, BIRD.height)  # over a hidden part
    (fused,) = consolidate([[BIRD], [BIRD], [BIRD], [BIRD], [sloppy]], WIDTH, HEIGHT)
    assert fused.box == BIRD


def test_boxes_of_nearby_objects_drawn_by_the_same_workers_stay_apart():
    left = PixelBox("Bird", 100, 100, 60, 60)
    right = PixelBox("Bird", 130, 100, 60, 60)  # IoU 1/3 with left: neighbours, not the same object
    result = consolidate([[left, right]] * 3, WIDTH, HEIGHT)
    assert sorted((c.box.left, c.support) for c in result) == [(100, 3), (130, 3)]


def test_a_box_around_a_group_drawn_by_a_minority_gives_way_to_the_single_boxes():
    a, b = PixelBox("Bird", 100, 100, 50, 50), PixelBox("Bird", 160, 100, 50, 50)
    group = PixelBox("Bird", 98, 98, 114, 54)
    answers = [[a, b], [a, b], [_shifted(a, dx=1), b], [group], [_shifted(group, dx=2)]]
    result = consolidate(answers, WIDTH, HEIGHT)
    assert sorted(c.box.left for c in result) == [100, 160]


def test_a_group_box_drawn_by_most_workers_is_kept():
    group = PixelBox("Bird", 98, 98, 114, 54)
    result = consolidate([[group]] * 4 + [[PixelBox("Bird", 100, 100, 50, 50)]], WIDTH, HEIGHT)
    assert [c.box for c in result] == [group]


def test_a_large_object_with_smaller_ones_in_front_is_not_a_group_box():
    large = PixelBox("Bird", 100, 100, 300, 220)
    small = [PixelBox("Bird", 130, 160, 60, 50), PixelBox("Bird", 160, 210, 100, 70)]
    answers = [[large, *small]] * 2 + [[*small]] + [[large, *small]] * 2
    result = consolidate(answers, WIDTH, HEIGHT)
    assert {(c.box, c.support) for c in result} == {(large, 4), (small[0], 5), (small[1], 5)}


def test_the_majority_label_wins():
    answers = [[BIRD], [BIRD], [_shifted(BIRD, label="Fish")]]
    (fused,) = consolidate(answers, WIDTH, HEIGHT)
    assert fused.box.label == "Bird"
    assert fused.support == 3


def test_fused_boxes_are_clipped_to_the_image_and_ordered_by_confidence():
    edge = PixelBox("Bird", 600, 440, 40, 40)
    answers = [[edge, BIRD], [_shifted(edge, dw=10, dh=10), BIRD], [BIRD]]
    result = consolidate(answers, WIDTH, HEIGHT)
    assert result[0].box == BIRD
    assert result[1].box.left + result[1].box.width <= WIDTH
    assert result[1].box.top + result[1].box.height <= HEIGHT
    assert result[0].confidence > result[1].confidence


def test_no_boxes_at_all_consolidate_to_none():
    assert consolidate([[], [], []], WIDTH, HEIGHT) == []


def test_consolidation_needs_an_answer():
    with pytest.raises(ValueError, match="at least one worker"):
        consolidate([], WIDTH, HEIGHT)


@pytest.mark.parametrize(("workers", "support"), [(1, 1), (2, 1), (3, 2), (5, 2), (6, 2), (7, 3), (9, 3)])
def test_min_support(workers, support):
    assert min_support(workers) == support
