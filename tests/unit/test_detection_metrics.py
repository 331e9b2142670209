import math

import numpy as np
import pytest

from ground_truth_pipeline.boxes import BoxTable, ltwh_pixels_to_xyxy, open_images_to_xyxy
from ground_truth_pipeline.detection_metrics import DetectionMetrics, detection_metrics

# Two images of different sizes, so a wrong pixel scaling shows up as a failed match.
IMAGE_SIZES = np.array([[400, 300], [200, 500]])

# Open Images reference boxes: normalised XMin, XMax, YMin, YMax.
REFERENCE_IMAGE = [0, 0, 1, 1]
REFERENCE_XMIN_XMAX_YMIN_YMAX = [
    [0.10, 0.40, 0.10, 0.50],
    [0.50, 0.90, 0.40, 0.90],
    [0.05, 0.45, 0.10, 0.30],
    [0.50, 0.95, 0.50, 0.95],
]


def reference(is_group: list[bool] | None = None) -> BoxTable:
    return BoxTable.build(
        image=REFERENCE_IMAGE,
        xyxy=open_images_to_xyxy(np.array(REFERENCE_XMIN_XMAX_YMIN_YMAX)),
        is_group=is_group,
    )


def as_detections(boxes: BoxTable, rows: list[int] | None = None) -> BoxTable:
    """The given reference rows as consolidated boxes with distinct scores."""
    chosen = boxes.select(np.arange(len(boxes)) if rows is None else np.array(rows, dtype=np.int64))
    return BoxTable.build(image=chosen.image, xyxy=chosen.xyxy, score=np.linspace(0.9, 0.6, len(chosen)))


def test_perfect_labels_score_one() -> None:
    truth = reference()

    result = detection_metrics(as_detections(truth), truth, IMAGE_SIZES)

    assert result == DetectionMetrics(
        precision=1.0, recall=1.0, ap50=1.0, ap=1.0, n_images=2, n_detections=4, n_references=4
    )


def test_half_the_boxes_missing_halves_recall() -> None:
    truth = reference()

    result = detection_metrics(as_detections(truth, [0, 2]), truth, IMAGE_SIZES)

    assert result.recall == 0.5
    assert result.precision == 1.0
    assert result.ap50 == pytest.approx(0.5, abs=0.01)


def test_a_box_shifted_to_iou_0_6_counts_at_0_5_but_lowers_ap() -> None:
    width, height = IMAGE_SIZES[0]
    truth = BoxTable.build(
        image=[0], xyxy=ltwh_pixels_to_xyxy(np.array([[100, 50, 100, 100]]), width, height)
    )
    # Shifted right by 24 px: intersection 76 x 100, union 124 x 100, IoU 0.613.
    shifted = BoxTable.build(
        image=[0], xyxy=ltwh_pixels_to_xyxy(np.array([[124, 50, 100, 100]]), width, height), score=[0.9]
    )

    result = detection_metrics(shifted, truth, IMAGE_SIZES)

    assert (result.precision, result.recall, result.ap50) == (1.0, 1.0, 1.0)
    # A match at IoU thresholds 0.50, 0.55 and 0.60 out of 0.50 .. 0.95.
    assert result.ap == pytest.approx(0.3)


def test_group_boxes_create_no_false_negatives_and_no_false_positives() -> None:
    truth = reference(is_group=[False, True, False, True])
    group_box = truth.xyxy[3]
    inside_group = np.tile((group_box[:2] + group_box[2:]) / 2, 2) + np.array([-0.05, -0.05, 0.05, 0.05])
    detections = BoxTable.concat(
        [
            as_detections(truth, [0, 2]),
            BoxTable.build(image=[1], xyxy=[inside_group], score=[0.95]),
        ]
    )

    result = detection_metrics(detections, truth, IMAGE_SIZES)

    assert (result.precision, result.recall, result.ap50, result.ap) == (1.0, 1.0, 1.0, 1.0)
    assert (result.n_detections, result.n_references) == (3, 2)


def test_a_detection_outside_every_box_is_a_false_positive() -> None:
    truth = reference()
    stray = BoxTable.build(image=[0], xyxy=[[0.0, 0.9, 0.05, 1.0]], score=[0.1])

    result = detection_metrics(BoxTable.concat([as_detections(truth), stray]), truth, IMAGE_SIZES)

    assert result.precision == 0.8
    assert result.recall == 1.0


def test_no_detections() -> None:
    result = detection_metrics(BoxTable.empty(), reference(), IMAGE_SIZES)

    assert math.isnan(result.precision)
    assert (result.recall, result.ap50, result.ap, result.n_detections) == (0.0, 0.0, 0.0, 0)


def test_no_references() -> None:
    result = detection_metrics(as_detections(reference()), BoxTable.empty(), IMAGE_SIZES)

    assert result.precision == 0.0
    assert all(math.isnan(value) for value in (result.recall, result.ap50, result.ap))
    assert result.n_references == 0


def test_library_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    truth = reference()

    detection_metrics(as_detections(truth), truth, IMAGE_SIZES)

    assert capfd.readouterr() == ("", "")


def test_rejects_image_sizes_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"image_sizes has shape \(2,\), expected \(N, 2\)"):
        detection_metrics(BoxTable.empty(), BoxTable.empty(), np.array([400, 300]))


def test_rejects_boxes_of_images_without_a_size() -> None:
    with pytest.raises(ValueError, match="reference boxes reference image 1, but image_sizes has 1 images"):
        detection_metrics(BoxTable.empty(), reference(), IMAGE_SIZES[:1])


def test_rejects_non_positive_image_sizes() -> None:
    with pytest.raises(ValueError, match=r"image_sizes\[1\] = \[200.0, 0.0\]"):
        detection_metrics(BoxTable.empty(), BoxTable.empty(), np.array([[400, 300], [200, 0]]))


def test_precision_and_recall_count_only_the_matching_at_iou_0_5() -> None:
    # At IoU 0.5 the first detection takes the first box and the second the other; at 0.65 and above the
    # first matches nothing and the second takes the first box. Pooling matches over all IoU thresholds
    # would count three true positives for two detections.
    width, height = IMAGE_SIZES[0]
    truth = BoxTable.build(
        image=[0, 0], xyxy=ltwh_pixels_to_xyxy(np.array([[0, 0, 60, 10], [10, 0, 60, 10]]), width, height)
    )
    detections = BoxTable.build(
        image=[0, 0],
        xyxy=ltwh_pixels_to_xyxy(np.array([[0, 0, 36, 10], [5, 0, 52, 10]]), width, height),
        score=[0.9, 0.8],
    )

    result = detection_metrics(detections, truth, IMAGE_SIZES)

    assert (result.precision, result.recall, result.ap50) == (1.0, 1.0, 1.0)
