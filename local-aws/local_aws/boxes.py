"""Boxes in the stack: Ground Truth's pixel boxes, their conversion to normalised corners, and IoU.

A Ground Truth bounding-box label (a worker's answer, a consolidated label, a training manifest line) holds
pixel ``left, top, width, height`` boxes with the image's size; the detector and its evaluation work on
normalised ``xmin, ymin, xmax, ymax`` corners. IoU does not change under a per-image scaling of both axes,
so it is the same in pixels and normalised.

The labeling engine (``local_aws.groundtruth``) and the object-detection algorithm
(``local_aws.object_detection``) both read boxes through this module, which imports nothing of the stack.
The product has its own box module (``ground_truth_pipeline.boxes``);
``tests/local_aws/test_box_code_agreement.py`` holds the two together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PixelBox:
    """A box as the crowd-bounding-box element submits it: pixels, origin top-left, with a label name."""

    label: str
    left: int
    top: int
    width: int
    height: int

    def answer(self) -> dict[str, Any]:
        """The box as one entry of an answer's ``boundingBoxes``."""
        return {
            "label": self.label,
            "left": self.left,
            "top": self.top,
            "width": self.width,
            "height": self.height,
        }

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        """Pixel corners ``x0, y0, x1, y1``."""
        return (
            float(self.left),
            float(self.top),
            float(self.left + self.width),
            float(self.top + self.height),
        )


def pixel_box(label: str, xyxy: np.ndarray, image_width: int, image_height: int) -> PixelBox | None:
    """Integer pixel box of float pixel corners, clipped to the image; None when nothing of it is left."""
    x0, x1 = np.clip(np.round(xyxy[[0, 2]]), 0, image_width).astype(int)
    y0, y1 = np.clip(np.round(xyxy[[1, 3]]), 0, image_height).astype(int)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return PixelBox(label, int(x0), int(y0), int(x1 - x0), int(y1 - y0))


def ltwh_pixels_to_xyxy(
    ltwh: np.ndarray, width: np.ndarray | float, height: np.ndarray | float
) -> np.ndarray:
    """Pixel boxes ``(n, 4)`` left, top, width, height to normalised xyxy ``(n, 4)``, clipped to [0, 1].

    ``width`` and ``height`` are the image's, one for all boxes or one per box. A box reaching past the
    image's edge is cut at the edge; one wholly outside it becomes a zero-area box on the edge.
    """
    ltwh = np.asarray(ltwh, dtype=np.float64).reshape(-1, 4)
    w = np.asarray(width, dtype=np.float64)
    h = np.asarray(height, dtype=np.float64)
    xyxy = np.stack(
        [ltwh[:, 0] / w, ltwh[:, 1] / h, (ltwh[:, 0] + ltwh[:, 2]) / w, (ltwh[:, 1] + ltwh[:, 3]) / h], axis=1
    )
    return np.clip(xyxy, 0.0, 1.0)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a (n, 4)`` with every box of ``b (m, 4)``: ``(n, m)``.

    Boxes are xyxy corners in any unit the two share: IoU = area of the intersection / area of the union. A
    zero-area or inverted box (``x1 <= x0`` or ``y1 <= y0``) has area 0 and IoU 0 with every box, itself
    included. Float32 boxes give float32 IoUs (the detector's), anything else float64.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    dtype = np.result_type(a.dtype, b.dtype, np.float32)
    a = a.astype(dtype, copy=False).reshape(-1, 4)
    b = b.astype(dtype, copy=False).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    extent = np.clip(bottom_right - top_left, 0.0, None)
    intersection = extent[..., 0] * extent[..., 1]
    union = _area(a)[:, None] + _area(b)[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def _area(boxes: np.ndarray) -> np.ndarray:
    """Areas of xyxy ``boxes (n, 4)``; 0 for an inverted box."""
    extent = np.clip(boxes[:, 2:] - boxes[:, :2], 0.0, None)
    return extent[:, 0] * extent[:, 1]
