"""A worker's answer to a bounding-box task, checked before it is stored, as AWS's worker UI would shape it.

The crowd form posts ``{"<element name>": {"boundingBoxes": [...], "inputImageProperties": {...}}}``; the
consolidation and output code downstream trusts that shape, so anything else is refused here with a message
that names the box and what is wrong with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MAX_BOXES = 100
ANSWER_KEYS = frozenset({"boundingBoxes", "inputImageProperties"})
BOX_KEYS = frozenset({"height", "label", "left", "top", "width"})
IMAGE_KEYS = frozenset({"height", "width"})


class AnswerRejected(ValueError):
    """An answer that is not stored; the message is shown to the worker."""


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _keys(found: dict[str, Any], expected: frozenset[str], where: str) -> None:
    if set(found) != expected:
        missing = sorted(expected - set(found))
        extra = sorted(set(found) - expected)
        parts = [f"is missing {missing}" if missing else "", f"has unexpected keys {extra}" if extra else ""]
        raise AnswerRejected(f"{where} {' and '.join(part for part in parts if part)}.")


def check_answer(
    answer: object, element_name: str, labels: Sequence[str], width: int, height: int
) -> dict[str, Any]:
    """The answer if it is a valid bounding-box answer for an image of ``width`` x ``height``."""
    if not isinstance(answer, dict) or list(answer) != [element_name]:
        keys = sorted(answer) if isinstance(answer, dict) else type(answer).__name__
        raise AnswerRejected(f'The answer must have exactly one key, "{element_name}"; got {keys}.')
    content = answer[element_name]
    if not isinstance(content, dict):
        raise AnswerRejected(
            f'"{element_name}" must be an object with boundingBoxes and inputImageProperties.'
        )
    _keys(content, ANSWER_KEYS, f'"{element_name}"')
    image = content["inputImageProperties"]
    if not isinstance(image, dict):
        raise AnswerRejected("inputImageProperties must be an object with the image's width and height.")
    _keys(image, IMAGE_KEYS, "inputImageProperties")
    if not all(_is_integer(image[key]) for key in IMAGE_KEYS) or (image["width"], image["height"]) != (
        width,
        height,
    ):
        raise AnswerRejected(
            f"inputImageProperties must be the image's size, width {width} and height {height};"
            f" got width {image['width']!r} and height {image['height']!r}."
        )
    boxes = content["boundingBoxes"]
    if not isinstance(boxes, list):
        raise AnswerRejected("boundingBoxes must be a list of boxes.")
    if len(boxes) > MAX_BOXES:
        raise AnswerRejected(f"An answer has at most {MAX_BOXES} boxes; this one has {len(boxes)}.")
    for number, box in enumerate(boxes, start=1):
        _check_box(number, box, labels, width, height)
    return answer


def _check_box(number: int, box: object, labels: Sequence[str], width: int, height: int) -> None:
    where = f"Box {number}"
    if not isinstance(box, dict):
        raise AnswerRejected(f"{where} must be an object with {sorted(BOX_KEYS)}.")
    _keys(box, BOX_KEYS, where)
    for key in ("left", "top", "width", "height"):
        if not _is_integer(box[key]):
            raise AnswerRejected(f"{where}: {key} must be a whole number of pixels, got {box[key]!r}.")
    if box["left"] < 0 or box["top"] < 0:
        raise AnswerRejected(f"{where} starts outside the image (left {box['left']}, top {box['top']}).")
    if box["width"] < 1 or box["height"] < 1:
        raise AnswerRejected(
            f"{where} must be at least 1 pixel wide and high (width {box['width']}, height {box['height']})."
        )
    if box["left"] + box["width"] > width:
        raise AnswerRejected(
            f"{where} runs past the image's right edge: left + width is {box['left'] + box['width']},"
            f" the image is {width} pixels wide."
        )
    if box["top"] + box["height"] > height:
        raise AnswerRejected(
            f"{where} runs past the image's bottom edge: top + height is {box['top'] + box['height']},"
            f" the image is {height} pixels high."
        )
    if not isinstance(box["label"], str) or box["label"] not in labels:
        raise AnswerRejected(
            f"{where}: label {box['label']!r} is not one of the job's labels {list(labels)}."
        )
