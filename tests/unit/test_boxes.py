import numpy as np
import pytest

from ground_truth_pipeline.boxes import (
    NO_WORKER,
    BoxTable,
    ltwh_pixels_to_xyxy,
    open_images_to_xyxy,
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
