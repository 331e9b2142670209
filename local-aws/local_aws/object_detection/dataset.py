"""A channel of augmented-manifest lines, its boxes and its images, ready for the detector.

Each line names its image by an S3 reference (the first attribute of ``AttributeNames``) and carries its
boxes in a Ground Truth bounding-box label (the second): ``{"image_size": [{"width", "height", ...}],
"annotations": [{"class_id", "left", "top", "width", "height"}, ...]}`` in pixels of that image size. Boxes
become normalised ``xmin, ymin, xmax, ymax``; images are read through a callable (S3 in the service, a dict
in tests), decoded and resized to the square ``image_shape`` the detector takes.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from local_aws.boxes import ltwh_pixels_to_xyxy
from local_aws.object_detection.errors import ClientInputError, InvalidImageError
from local_aws.object_detection.hyperparameters import (
    LABEL_HEADER_WIDTH,
    LABEL_OBJECT_WIDTH,
    Hyperparameters,
)

READ_THREADS = 8  # images are read from S3: latency, not CPU, bounds the reading


@dataclass(frozen=True)
class LabeledImage:
    channel: str
    line_number: int  # 1-based, counting the manifest's non-blank lines
    source_ref: str
    boxes: np.ndarray  # float32 (n, 4): normalised xmin, ymin, xmax, ymax
    class_ids: np.ndarray  # int64 (n,)

    @property
    def where(self) -> str:
        return f"{self.channel} channel, line {self.line_number} ({self.source_ref})"


def check_attribute_names(attribute_names: Sequence[str]) -> tuple[str, str]:
    """The image reference and label attributes of an AugmentedManifestFile channel, in that order."""
    names = list(attribute_names) if not isinstance(attribute_names, str) else [attribute_names]
    if (
        len(names) != 2
        or not all(isinstance(name, str) and name for name in names)
        or not names[0].endswith("-ref")
        or names[1].endswith("-ref")
    ):
        raise ClientInputError(
            "AttributeNames of an AugmentedManifestFile channel must name the image reference first and "
            f"the bounding-box label second, e.g. ['source-ref', 'category']; got {names!r}"
        )
    return names[0], names[1]


def parse_manifest(text: str, channel: str) -> list[dict[str, Any]]:
    """The JSON objects of a manifest's non-blank lines (a trailing newline is no sample)."""
    lines = []
    for number, line in enumerate((line for line in text.splitlines() if line.strip()), start=1):
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise ClientInputError(f"{channel} channel, line {number}: not JSON ({error})") from None
        lines.append(value)
    return lines


def read_channel(
    lines: Sequence[Mapping[str, Any]], attribute_names: Sequence[str], channel: str
) -> list[LabeledImage]:
    """The labeled images of a channel's manifest lines."""
    image_attribute, label_attribute = check_attribute_names(attribute_names)
    if not lines:
        raise ClientInputError(f"the {channel} channel has no records; the algorithm needs at least one")
    return [
        _labeled_image(line, number, channel, image_attribute, label_attribute)
        for number, line in enumerate(lines, start=1)
    ]


def _labeled_image(
    line: Mapping[str, Any], number: int, channel: str, image_attribute: str, label_attribute: str
) -> LabeledImage:
    where = f"{channel} channel, line {number}"
    if not isinstance(line, Mapping):
        raise ClientInputError(f"{where}: a manifest line must be a JSON object, got {line!r}")
    for attribute in (image_attribute, label_attribute):
        if attribute not in line:
            raise ClientInputError(
                f"{where}: attribute {attribute!r} of AttributeNames is missing; the line has "
                f"{', '.join(map(repr, line)) or 'no attributes'}"
            )
    source_ref = line[image_attribute]
    if not isinstance(source_ref, str) or not source_ref.startswith("s3://"):
        raise ClientInputError(f"{where}: {image_attribute!r} must be an s3:// URI, got {source_ref!r}")
    boxes, class_ids = _label_boxes(line[label_attribute], f"{where}, attribute {label_attribute!r}")
    return LabeledImage(channel, number, source_ref, boxes, class_ids)


def _label_boxes(label: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(label, Mapping) or not isinstance(label.get("annotations"), list):
        raise ClientInputError(f"{where}: not a bounding-box label with an 'annotations' list")
    try:
        size = label["image_size"][0]
        width, height = float(size["width"]), float(size["height"])
    except (KeyError, IndexError, TypeError, ValueError):
        raise ClientInputError(f"{where}: no image_size [{{'width', 'height'}}] in the label") from None
    if not (math.isfinite(width) and math.isfinite(height) and width > 0 and height > 0):
        raise ClientInputError(f"{where}: image_size must be positive, got {size!r}")
    boxes, class_ids = [], []
    for index, annotation in enumerate(label["annotations"]):
        try:
            class_id = annotation["class_id"]
            ltwh = [float(annotation[key]) for key in ("left", "top", "width", "height")]
        except (KeyError, TypeError, ValueError):
            raise ClientInputError(
                f"{where}: annotation {index} needs numbers class_id, left, top, width, height; "
                f"got {annotation!r}"
            ) from None
        if isinstance(class_id, bool) or not isinstance(class_id, int | float) or class_id != int(class_id):
            raise ClientInputError(f"{where}: annotation {index} has class_id {class_id!r}, not an integer")
        (corners,) = ltwh_pixels_to_xyxy([ltwh], width, height)
        if not (np.all(np.isfinite(corners)) and corners[2] > corners[0] and corners[3] > corners[1]):
            raise ClientInputError(
                f"{where}: annotation {index} is no box inside the {width:g}x{height:g} image: {annotation!r}"
            )
        boxes.append(corners)
        class_ids.append(int(class_id))
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(class_ids, np.int64)


def check_labels(images: Sequence[LabeledImage], hyperparameters: Hyperparameters) -> None:
    """Class ids below ``num_classes`` and no image with more boxes than ``label_width`` holds."""
    num_classes = hyperparameters.num_classes
    for image in images:
        outside = image.class_ids[(image.class_ids < 0) | (image.class_ids >= num_classes)]
        if outside.size:
            raise ClientInputError(
                f"{image.where}: class_id {int(outside[0])} is outside num_classes={num_classes} "
                f"(class ids run from 0 to {num_classes - 1})"
            )
    fullest = max(images, key=lambda image: len(image.class_ids))
    if len(fullest.class_ids) > hyperparameters.max_boxes_per_image:
        needed = LABEL_HEADER_WIDTH + LABEL_OBJECT_WIDTH * len(fullest.class_ids)
        raise ClientInputError(
            f"hyperparameter label_width={hyperparameters.label_width} is too small for the data: "
            f"{fullest.where} has {len(fullest.class_ids)} boxes, which need a label_width of at least "
            f"{needed} ({LABEL_HEADER_WIDTH} header values and {LABEL_OBJECT_WIDTH} per box)"
        )


def decode_image(data: bytes, image_shape: int) -> torch.Tensor:
    """An encoded image (JPEG, PNG, ...) as a uint8 tensor (3, image_shape, image_shape)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (image_shape, image_shape))  # JPEG: decode at a reduced scale, much faster
            resized = image.convert("RGB").resize((image_shape, image_shape), Image.Resampling.BILINEAR)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise InvalidImageError(f"not an image that can be decoded: {error}") from None
    return torch.from_numpy(np.array(resized)).permute(2, 0, 1).contiguous()


def load_images(
    images: Sequence[LabeledImage], read_image: Callable[[str], bytes], image_shape: int
) -> torch.Tensor:
    """Every image of ``images`` read, decoded and resized: uint8 (N, 3, image_shape, image_shape)."""

    def load(image: LabeledImage) -> torch.Tensor:
        try:
            data = read_image(image.source_ref)
        except Exception as error:
            raise ClientInputError(f"{image.where}: the image cannot be read: {error}") from error
        try:
            return decode_image(data, image_shape)
        except InvalidImageError as error:
            raise ClientInputError(f"{image.where}: {error}") from None

    with ThreadPoolExecutor(READ_THREADS) as pool:
        return torch.stack(list(pool.map(load, images)))
