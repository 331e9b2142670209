"""The container images of SageMaker's built-in algorithms that the local stack runs.

AWS publishes each built-in algorithm in every region as
``<account>.dkr.ecr.<region>.amazonaws.com/<name>:<tag>`` (the account differs per region, the tag is ``1`` or
``latest``); the stack accepts the object-detection image of any region, since a DAG written for AWS names
the one of its own region.
"""

from __future__ import annotations

import re

OBJECT_DETECTION = "object-detection"
_IMAGE = re.compile(
    r"(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z]{2}(-[a-z]+)+-\d)\.amazonaws\.com(\.cn)?"
    r"/(?P<repository>[a-z0-9._/-]+)(:(?P<tag>[\w][\w.-]{0,127}))?"
)


def is_object_detection_image(image: str) -> bool:
    match = _IMAGE.fullmatch(image)
    return match is not None and match["repository"] == OBJECT_DETECTION


def check_object_detection_image(image: str, field: str) -> None:
    """ValueError naming ``field`` unless ``image`` is the object-detection algorithm's image of a region."""
    if not is_object_detection_image(image):
        raise ValueError(
            f"{field} {image!r} is not an image the local stack runs: it runs SageMaker's built-in"
            f" {OBJECT_DETECTION} algorithm,"
            f" <account>.dkr.ecr.<region>.amazonaws.com/{OBJECT_DETECTION}:<tag>"
        )
