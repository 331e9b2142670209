"""The decisions of automated data labeling (``active_learning``) and the names of its SageMaker resources."""

from __future__ import annotations

import math

import numpy as np
import pytest

from local_aws.groundtruth import active_learning as al
from local_aws.groundtruth.active_learning import Detection
from local_aws.groundtruth.auto_labeling_detector import (
    MAX_NAME_LENGTH,
    epochs_for,
    is_resource_of,
    name_stem,
    resource_name,
    run_of,
)


@pytest.mark.parametrize(
    ("total", "size"), [(100, 20), (1000, 200), (4999, 1000), (5000, 500), (12000, 1200)]
)
def test_validation_set_is_a_fifth_under_5000_objects_else_a_tenth(total, size):
    assert al.validation_set_size(total) == size


def test_plan_splits_the_objects_into_disjoint_random_stages():
    plan = al.plan_objects("birds", 1000, 200)
    stages = (plan.probe, plan.initial_training, plan.validation, plan.rest)
    assert [len(stage) for stage in stages] == [10, 190, 200, 600]
    assert sorted(o for stage in stages for o in stage) == list(range(1000))
    assert plan.probe != tuple(range(10))  # random, not the first lines
    assert al.plan_objects("birds", 1000, 200) == plan
    assert al.plan_objects("other-birds", 1000, 200).probe != plan.probe


def test_first_training_batch_is_capped_by_the_validation_set_and_leaves_objects_for_the_machine():
    plan = al.plan_objects("birds", 100, 1000)
    assert (len(plan.probe), len(plan.initial_training), len(plan.validation)) == (10, 10, 20)
    assert len(plan.rest) == 60
    small_batches = al.plan_objects("birds", 100, 12)
    assert len(small_batches.initial_training) == 2  # MaxConcurrentTaskCount less the probe


def test_probe_fails_the_job_when_more_than_a_tenth_fails():
    assert not al.probe_failed(1, 10)
    assert al.probe_failed(2, 10)
    assert not al.probe_failed(0, 3)


def test_batches_keep_the_order():
    assert al.batches([5, 3, 9, 1, 7], 2) == [[5, 3], [9, 1], [7]]


def _box(x0: float, y0: float, x1: float, y1: float, class_id: int = 0):
    return (class_id, (x0, y0, x1, y1))


def test_per_class_image_miou_counts_predicted_and_missed_boxes_per_class():
    truth = [_box(0, 0, 10, 10), _box(20, 20, 30, 30)]
    assert al.per_class_image_miou(truth, truth) == 1.0
    # One box found exactly, one missed: (1 + 0) / 2.
    assert al.per_class_image_miou(truth[:1], truth) == 0.5
    # A spurious box counts as a predicted box without a match: (1 + 1 + 0) / 3.
    assert al.per_class_image_miou([*truth, _box(50, 50, 60, 60)], truth) == pytest.approx(2 / 3)
    # Half overlap: IoU 5x10 / (150) = 1/3.
    assert al.per_class_image_miou([_box(5, 0, 15, 10)], truth[:1]) == pytest.approx(1 / 3)
    assert al.per_class_image_miou([], []) == 1.0
    assert al.per_class_image_miou([], truth) == 0.0


def test_per_class_image_miou_averages_over_the_classes_of_either_side():
    truth = [_box(0, 0, 10, 10, 0), _box(20, 20, 30, 30, 1)]
    predicted = [_box(0, 0, 10, 10, 0), _box(20, 20, 30, 30, 0)]  # the second with the wrong class
    # Class 0: one match of IoU 1 and a spurious box, 1/2; class 1: missed, 0.
    assert al.per_class_image_miou(predicted, truth) == pytest.approx(0.25)


def test_matching_is_one_to_one():
    truth = [_box(0, 0, 10, 10)]
    assert al.per_class_image_miou([_box(0, 0, 10, 10), _box(0, 0, 10, 10)], truth) == 0.5


def _detection(score: float) -> Detection:
    return Detection(0, score, 0.1, 0.1, 0.5, 0.5)


def test_image_confidence_is_that_of_its_least_decided_detection():
    assert al.least_decided_margin([], 0.5) == 1.0
    assert al.least_decided_margin([_detection(0.9)], 0.5) == pytest.approx(0.8)
    assert al.least_decided_margin([_detection(0.9), _detection(0.55)], 0.5) == pytest.approx(0.1)
    assert al.least_decided_margin([_detection(0.9), _detection(0.2)], 0.5) == pytest.approx(0.6)
    # Relative to the cutoff: with a low one, 0.82 is decidedly a box (0.8) and 0.01 decidedly none (0.9).
    assert al.least_decided_margin([_detection(0.82), _detection(0.01)], 0.1) == pytest.approx(0.8)


def test_label_keeps_the_detections_at_or_above_the_cutoff_best_first():
    kept = al.kept_detections([_detection(0.6), _detection(0.3), _detection(0.9)], 0.3)
    assert [d.score for d in kept] == [0.9, 0.6, 0.3]


def _located(score: float, x0: float) -> Detection:
    return Detection(0, score, x0, 0.0, x0 + 0.2, 0.2)


def test_calibration_picks_the_cutoff_that_lets_the_machine_label_the_most_validation_images():
    truth = [(0, (0.0, 0.0, 0.2, 0.2))]
    # Five images whose bird is found, with a low score (0.45), five where a box is far from it (0.2).
    good = [([_located(0.45, 0.0)], truth)] * 5
    bad = [([_located(0.2, 0.7)], truth)] * 5
    calibration = al.calibrate(good + bad)
    # A cutoff of 0.5 keeps no box at all; 0.45 or lower keeps the good boxes.
    assert calibration.box_cutoff <= 0.45
    assert calibration.threshold.validation_images == 5
    assert calibration.threshold.expected_mean_iou == 1.0
    assert calibration.qualities == (1.0,) * 5 + (0.0,) * 5
    nothing = al.calibrate(bad)
    assert nothing.threshold.confidence is None
    assert nothing.empty_threshold.confidence is None


def test_threshold_is_the_lowest_confidence_whose_images_are_expected_to_reach_the_required_iou():
    confidences = [0.99, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.55]
    qualities = [0.9, 0.8, 0.7, 0.7, 0.6, 0.3, 0.2, 0.0]
    threshold = al.choose_threshold(confidences, qualities)
    # Down to 0.6 the mean would still be 4.2 / 7 = 0.6, but an image at 0.7 is expected to reach only 0.3.
    assert threshold.confidence == 0.8
    assert threshold.validation_images == 5
    assert threshold.expected_mean_iou == pytest.approx(3.7 / 5)
    assert threshold.expected_iou_at_threshold == pytest.approx(0.6)
    # 0.85 reaches 0.7, but only 4 images are at or above it.
    assert al.choose_threshold(confidences, qualities, required=0.7).confidence is None


def test_a_lucky_image_below_poor_ones_does_not_lower_the_threshold():
    confidences = [0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6]
    qualities = [0.8, 0.8, 0.8, 0.8, 0.8, 0.2, 0.9]
    threshold = al.choose_threshold(confidences, qualities)
    # The fit pools 0.65 and 0.6 (expected 0.55): the threshold stays above both.
    assert threshold.confidence == 0.7
    assert threshold.expected_iou_at_threshold == pytest.approx(0.8)


def test_threshold_takes_or_leaves_images_of_equal_confidence_together():
    confidences = [0.9, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8]
    # Without a margin: the 0.8 pair is expected to reach (1.0 + 0.2) / 2 = 0.6 together, though one of
    # them reaches 0.2.
    assert al.choose_threshold(confidences, [0.7] * 5 + [1.0, 0.2], margin=0).confidence == 0.8
    assert al.choose_threshold(confidences, [0.7] * 5 + [1.0, 0.0], margin=0).confidence == 0.9


def test_an_image_at_the_threshold_must_be_expected_to_reach_the_quality_by_a_standard_error():
    confidences = [0.9, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8]
    qualities = [0.7] * 5 + [1.0, 0.2]
    threshold = al.choose_threshold(confidences, qualities)
    # The spread about the fit (0.7 x 5, 0.6 x 2) is sqrt((0.4^2 + 0.4^2) / 7) = 0.214: the pair at 0.8 is
    # expected to reach 0.6 - 0.214 / sqrt(2), too little; the five at 0.9 reach 0.7 - 0.214 / sqrt(5).
    assert threshold.confidence == 0.9
    assert threshold.expected_iou_at_threshold == pytest.approx(0.7)
    assert threshold.standard_error_at_threshold == pytest.approx(np.sqrt(0.32 / 7) / np.sqrt(5))
    # A bigger margin admits nothing: 0.7 - 2 x 0.0956 < 0.6.
    assert al.choose_threshold(confidences, qualities, margin=2).confidence is None
    # Qualities on the fit have no spread: the margin changes nothing.
    assert al.choose_threshold([0.9] * 5, [0.6] * 5, margin=3).confidence == 0.9


def test_no_threshold_when_too_few_images_or_too_little_quality():
    assert al.choose_threshold([0.9] * 4, [1.0] * 4).confidence is None  # under MIN_THRESHOLD_SUPPORT
    none = al.choose_threshold([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [0.5] * 6)
    assert (none.confidence, none.expected_mean_iou, none.validation_images) == (None, None, 0)
    assert al.choose_threshold([], []).confidence is None
    with pytest.raises(ValueError, match="3 confidences but 2 qualities"):
        al.choose_threshold([0.1, 0.2, 0.3], [0.1, 0.2])


def test_auto_labeled_objects_are_those_at_or_above_the_threshold_of_their_label():
    truth = [(0, (0.0, 0.0, 0.2, 0.2))]
    found = [([_located(0.6 + 0.05 * i, 0.0)], truth) for i in range(5)]
    # Five more birds the detector scores far below any cutoff: their images look surely empty.
    missed = [([_located(0.01, 0.0)], truth)] * 5
    calibration = al.calibrate(found + missed)
    assert calibration.threshold.confidence is not None
    assert calibration.empty_threshold.confidence is None
    assert calibration.empty == (False,) * 5 + (True,) * 5
    unlabeled = {
        4: [_located(0.95, 0.0)],
        2: [_located(0.99, 0.3)],
        7: [_located(0.01, 0.0)],  # would be an empty label, which the validation set does not trust
        9: [],
    }
    assert al.auto_labeled(unlabeled, calibration) == [2, 4]
    nothing = al.calibrate(missed)
    assert (nothing.validation_images, nothing.expected_mean_iou) == (0, None)
    assert al.auto_labeled(unlabeled, nothing) == []


def test_empty_labels_are_trusted_when_the_validation_set_shows_them_right():
    truth = [(0, (0.0, 0.0, 0.2, 0.2))]
    found = [([_located(0.9, 0.0)], truth)] * 5
    empty = [([_located(0.02, 0.5)], [])] * 5  # images without birds, where the detector sees none
    calibration = al.calibrate(found + empty)
    assert calibration.empty_threshold.validation_images == 5
    assert calibration.validation_images == 10
    assert al.auto_labeled({3: [_located(0.01, 0.5)], 8: []}, calibration) == [3, 8]


def test_humans_get_the_least_sure_objects_first():
    confidences = {1: 0.9, 2: 0.6, 3: 0.7, 4: 0.6}
    # Object 5 has no prediction at all: humans take it first; ties keep the given (random) order.
    assert al.next_for_humans([1, 4, 2, 3, 5], confidences, 3) == [5, 4, 2]


def test_an_object_whose_label_would_be_empty_is_unsure_while_empty_labels_are_not_trusted():
    truth = [(0, (0.0, 0.0, 0.2, 0.2))]
    calibration = al.calibrate([([_located(0.9, 0.0)], truth)] * 5 + [([_located(0.01, 0.0)], truth)] * 5)
    assert al.human_priority(None, calibration) == -math.inf
    assert al.human_priority([_located(0.01, 0.0)], calibration) == -math.inf
    assert al.human_priority([], calibration) == -math.inf
    sure = al.human_priority([_located(0.95, 0.0)], calibration)
    assert sure == al.least_decided_margin([_located(0.95, 0.0)], calibration.box_cutoff) > 0


def test_resource_names_derive_from_the_job_name_and_fit_sagemaker_names():
    assert resource_name("birds", "train", 4, 1) == "birds-al-train-4"
    assert resource_name("birds", "model", 4, 2) == "birds-al-model-4-r2"
    long_name = "a" * 63
    name = resource_name(long_name, "infer99", 9999, 9999)
    assert len(name) == MAX_NAME_LENGTH
    assert name.startswith(name_stem(long_name)) and name.endswith("-al-infer99-9999-r9999")
    assert name_stem(long_name) != name_stem("a" * 62 + "b")  # the hash tells long names apart


def test_run_number_of_a_resource_name():
    assert run_of("birds-al-train-4") == 1
    assert run_of("birds-al-infer-12-r3") == 3


def test_a_job_recognises_its_own_resources_only():
    assert is_resource_of("birds", "birds-al-train-4")
    assert is_resource_of("birds", "Birds-al-infer2-12-r3")
    assert not is_resource_of("birds", "birds-al-x-al-train-4")  # the job "birds-al-x"'s
    assert is_resource_of("birds-al-x", "birds-al-x-al-train-4")
    assert not is_resource_of("birds", "birds-al-train-4-extra")


def test_epochs_keep_the_images_seen_per_training_about_even():
    assert epochs_for(800) == 32
    assert epochs_for(600) == 43
    assert epochs_for(5000) == 30  # at least
    assert epochs_for(200) == 60  # at most
