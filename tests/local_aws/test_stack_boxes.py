"""The stack's box module: what its users rely on beyond what the product shares (test_box_code_agreement)."""

from __future__ import annotations

import numpy as np
import pytest

from local_aws.boxes import PixelBox, iou_matrix, pixel_box


def test_iou_keeps_the_detectors_float32_and_reads_integer_pixels_as_floats():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 0, 15, 10]], np.float32)
    assert iou_matrix(a, b).dtype == np.float32  # the validation mAP compares float32 IoUs, as it always has
    pixels = iou_matrix(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10]]))
    assert pixels.dtype == np.float64
    assert pixels[0, 0] == pytest.approx(1 / 3)


def test_pixel_box_rounds_and_clips_float_corners_to_the_image():
    assert pixel_box("Bird", np.array([-3.2, 10.6, 50.4, 90.0]), 40, 80) == PixelBox("Bird", 0, 11, 40, 69)
    assert pixel_box("Bird", np.array([45.0, 10.0, 60.0, 20.0]), 40, 80) is None  # wholly outside
    assert PixelBox("Bird", 1, 2, 3, 4).xyxy == (1.0, 2.0, 4.0, 6.0)
