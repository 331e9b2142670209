import numpy as np
import pytest

from ground_truth_pipeline.boxes import (
    NO_WORKER,
    BoxTable,
    ltwh_pixels_to_xyxy,
    open_images_to_xyxy,
    pairwise_iou,
    xyxy_to_pixels,
)


def test_build_fills_defaults_and_checks_shapes():
    table = BoxTable.build(image=[0, 1], xyxy=[[0, 0, 0.5, 0.5], [0.1, 0.2, 0.3, 0.4]])
    assert table.score.tolist() == [1.0, 1.0]
    assert table.worker.tolist() == [NO_WORKER, NO_WORKER]
    assert not table.is_group.any()
    with pytest.raises(ValueError, match="score has shape"):
        BoxTable(
            image=np.zeros(2, np.int64),
            xyxy=np.zeros((2, 4)),
            score=np.zeros(3),
            class_id=np.zeros(2, np.int64),
            is_group=np.zeros(2, bool),
            worker=np.zeros(2, np.int64),
        )


def test_concat_select_and_counts():
    a = BoxTable.build(image=[0], xyxy=[[0, 0, 1, 1]])
    b = BoxTable.build(image=[2, 2], xyxy=[[0, 0, 0.5, 0.5]] * 2, worker=[0, 1])
    table = BoxTable.concat([a, b])
    assert len(table) == 3
    assert table.counts(4).tolist() == [1, 0, 2, 0]
    assert table.of_image(2).worker.tolist() == [0, 1]
    assert len(BoxTable.concat([])) == 0


def test_coordinate_conversions():
    xyxy = ltwh_pixels_to_xyxy([[10, 20, 30, 40]], width=100, height=200)
    assert xyxy.tolist() == [[0.1, 0.1, 0.4, 0.3]]
    assert ltwh_pixels_to_xyxy([[-5, 0, 200, 10]], 100, 100)[0].tolist() == [0.0, 0.0, 1.0, 0.1]
    assert open_images_to_xyxy([[0.1, 0.4, 0.2, 0.3]]).tolist() == [[0.1, 0.2, 0.4, 0.3]]
    assert xyxy_to_pixels([[0.1, 0.2, 0.4, 0.3]], 100, 50).tolist() == [[10, 10, 40, 15]]


def strip(x0: float, x1: float) -> list[float]:
    """A box spanning the image's full height, so IoUs are ratios of x intervals."""
    return [x0, 0.0, x1, 1.0]


def test_pairwise_iou_of_known_boxes() -> None:
    a = np.array([[strip(0.0, 0.5), [0.0, 0.0, 0.0, 0.0]]])
    b = np.array([[strip(0.0, 0.5), strip(0.25, 0.75), strip(0.6, 1.0)]])

    iou = pairwise_iou(a, b)

    assert iou.shape == (1, 2, 3)
    np.testing.assert_allclose(iou[0, 0], [1.0, 1 / 3, 0.0])
    np.testing.assert_array_equal(iou[0, 1], [0.0, 0.0, 0.0])


def test_pairwise_iou_rejects_mismatched_images() -> None:
    with pytest.raises(ValueError, match="a has 2 images and b has 1"):
        pairwise_iou(np.zeros((2, 1, 4)), np.zeros((1, 1, 4)))


def test_pairwise_iou_of_two_zero_area_boxes_is_zero() -> None:
    point = [0.5, 0.5, 0.5, 0.5]
    flat = [0.2, 0.5, 0.8, 0.5]

    iou = pairwise_iou(np.array([[point, flat]]), np.array([[point, flat, strip(0.0, 1.0)]]))

    np.testing.assert_array_equal(iou, np.zeros((1, 2, 3)))
