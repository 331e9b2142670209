"""Boxes as the crowd-bounding-box element submits them: pixels, origin top-left, with a label name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PixelBox:
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
        return (
            float(self.left),
            float(self.top),
            float(self.left + self.width),
            float(self.top + self.height),
        )


def pixel_box(label: str, xyxy: np.ndarray, image_width: int, image_height: int) -> PixelBox | None:
    """Integer pixel box of float corners, clipped to the image; None when nothing of it is left."""
    x0, x1 = np.clip(np.round(xyxy[[0, 2]]), 0, image_width).astype(int)
    y0, y1 = np.clip(np.round(xyxy[[1, 3]]), 0, image_height).astype(int)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return PixelBox(label, int(x0), int(y0), int(x1 - x0), int(y1 - y0))


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box of ``a`` (n, 4) with every box of ``b`` (m, 4), xyxy corners."""
    left = np.maximum(a[:, None, 0], b[None, :, 0])
    top = np.maximum(a[:, None, 1], b[None, :, 1])
    right = np.minimum(a[:, None, 2], b[None, :, 2])
    bottom = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
