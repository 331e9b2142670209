"""A data object of a labeling job: its image, read and decoded, and what labeling it came to.

Both workforces start from the same reading of an object: one that cannot be read or decoded fails alone,
with a FailureReason naming it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from PIL import Image, UnidentifiedImageError

from local_aws.groundtruth.consolidation import ConsolidatedBox
from local_aws.s3_objects import read_object


@dataclass(frozen=True)
class ObjectResult:
    """How one object ended: consolidated boxes, or the reason it failed."""

    object_id: int
    failure_reason: str | None = None
    image_size: tuple[int, int, int] = (0, 0, 0)  # width, height, depth
    boxes: tuple[ConsolidatedBox, ...] = ()
    last_submission: datetime | None = None


@dataclass(frozen=True)
class DecodedImage:
    data: bytes
    width: int
    height: int
    depth: int


def read_image(s3: Any, source_ref: str) -> DecodedImage | str:
    """The object's image, or the FailureReason of an object that cannot be read or decoded."""
    try:
        data = read_object(s3, source_ref)
    except ClientError as err:
        return f"ClientError: Could not read the data object {source_ref}: {err}"
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            width, height = image.size
            depth = len(image.getbands())
    except UnidentifiedImageError:
        return f"ClientError: The data object {source_ref} is not an image in a format that can be read"
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        return f"ClientError: The image {source_ref} could not be decoded: {err}"
    return DecodedImage(data, width, height, depth)
