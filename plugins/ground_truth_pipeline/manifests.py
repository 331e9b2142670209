"""Ground Truth manifests: the input manifest, the output (augmented) manifest and its train/validation split.

An output manifest line holds the input fields, the label attribute (pixel boxes and the image size) and
``<attribute>-metadata`` (one confidence per box, whether a human labeled it, the class map and the job).
Every line is validated, and a bad one is reported with its 1-based line number and what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlparse

import numpy as np

from ground_truth_pipeline.boxes import BoxTable, LabeledImage, ltwh_pixels_to_xyxy

METADATA_SUFFIX = "-metadata"
OBJECT_DETECTION_TYPE = "groundtruth/object-detection"
JOB_NAME_PREFIX = "labeling-job/"
_BOX_FIELDS = ("left", "top", "width", "height")


class ManifestError(ValueError):
    """A manifest line that is not in the format Ground Truth writes."""


def input_manifest(source_refs: Iterable[str]) -> bytes:
    """The JSON Lines input manifest of a labeling job, one ``{"source-ref": ...}`` per line."""
    return "".join(json.dumps({"source-ref": ref}) + "\n" for ref in source_refs).encode("utf-8")


def label_attribute_of(first_line_obj: dict[str, Any]) -> str:
    """The label attribute of an output manifest line: the key whose ``-metadata`` companion is present."""
    metadata_keys = sorted(k for k in first_line_obj if k.endswith(METADATA_SUFFIX))
    if len(metadata_keys) != 1:
        found = ", ".join(repr(k) for k in metadata_keys) or "none"
        raise ManifestError(
            f"Cannot tell the label attribute: expected exactly one key ending in {METADATA_SUFFIX!r}, "
            f"found {found}; pass the label attribute name explicitly"
        )
    return metadata_keys[0][: -len(METADATA_SUFFIX)]


@dataclass(frozen=True)
class OutputManifest:
    """A parsed output manifest; ``consolidated.image`` and ``images`` index the non-blank lines."""

    label_attribute: str
    images: list[LabeledImage]
    consolidated: BoxTable
    class_map: dict[int, str]
    job_name: str
    raw_lines: list[str]

    @property
    def failed_count(self) -> int:
        return sum(img.failure_reason is not None for img in self.images)


@dataclass(frozen=True)
class _ParsedLine:
    image: LabeledImage
    ltwh: list[list[float]]
    confidence: list[float]
    class_id: list[int]
    class_map: dict[int, str]
    job_name: str | None


class JsonChecker:
    """Checks on decoded JSON whose errors name the input (``where``) and the dotted path of the field.

    Shared by the readers of a labeling job's JSON files (manifest lines, worker and consolidation responses).
    """

    def __init__(self, where: str, error_type: type[ValueError] = ManifestError) -> None:
        self.where = where
        self.error_type = error_type

    def error(self, message: str) -> ValueError:
        return self.error_type(f"{self.where}: {message}")

    def decode(self, text: str | bytes) -> Any:
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise self.error(f"not valid JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
        except UnicodeDecodeError as err:
            raise self.error(f"not UTF-8 text ({err.reason})") from None

    def get(self, obj: dict[str, Any], key: str, parent: str = "") -> tuple[Any, str]:
        """The value of ``obj[key]`` and its dotted path, or an error naming the missing field."""
        path = f"{parent}.{key}" if parent else key
        if key not in obj:
            raise self.error(f"{path!r} is missing")
        return obj[key], path

    def mapping(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(f"{path!r} must be a JSON object, got {_json_type(value)}")
        return value

    def items(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.error(f"{path!r} must be a JSON array, got {_json_type(value)}")
        return value

    def number(self, value: Any, path: str) -> float:
        if type(value) not in (int, float):  # JSON numbers only: bool is a subclass of int
            raise self.error(f"{path!r} must be a number, got {_json_type(value)}")
        return float(value)

    def integer(self, value: Any, path: str) -> int:
        if type(value) is not int:
            raise self.error(f"{path!r} must be an integer, got {_json_type(value)}")
        return value

    def text(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.error(f"{path!r} must be a non-empty string, got {_json_type(value)}")
        return value


def _json_type(value: Any) -> str:
    if isinstance(value, str):
        return "an empty string" if not value else "a string"
    names = {dict: "an object", list: "an array", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else type(value).__name__)


def _image_id(source_ref: str) -> str:
    return PurePosixPath(urlparse(source_ref).path).stem


def _parse_line(line: str, check: JsonChecker, object_id: int, label_attribute: str) -> _ParsedLine:
    obj = check.decode(line)
    if not isinstance(obj, dict):
        raise check.error(f"must be a JSON object, got {_json_type(obj)}")
    source_ref = check.text(*check.get(obj, "source-ref"))
    meta_key = label_attribute + METADATA_SUFFIX
    metadata = check.mapping(*check.get(obj, meta_key))

    if label_attribute not in obj:
        if "failure-reason" not in metadata:
            raise check.error(f"{label_attribute!r} is missing and {meta_key!r} has no 'failure-reason'")
        reason = str(metadata["failure-reason"])
        image = LabeledImage(object_id, source_ref, _image_id(source_ref), 0, 0, False, failure_reason=reason)
        return _ParsedLine(image, [], [], [], {}, None)

    label = check.mapping(obj[label_attribute], label_attribute)
    sizes, sizes_path = check.get(label, "image_size", label_attribute)
    if not check.items(sizes, sizes_path):
        raise check.error(f"{sizes_path!r} is empty")
    size = check.mapping(sizes[0], f"{sizes_path}[0]")
    width_height = []
    for dim in ("width", "height"):
        value, path = check.get(size, dim, f"{sizes_path}[0]")
        if check.number(value, path) <= 0:
            raise check.error(f"{path!r} must be positive, got {value}")
        width_height.append(round(value))

    annotations, annotations_path = check.get(label, "annotations", label_attribute)
    ltwh, class_id = [], []
    for i, raw in enumerate(check.items(annotations, annotations_path)):
        box_path = f"{annotations_path}[{i}]"
        box = check.mapping(raw, box_path)
        class_id.append(check.integer(*check.get(box, "class_id", box_path)))
        ltwh.append([check.number(*check.get(box, k, box_path)) for k in _BOX_FIELDS])

    objects, objects_path = check.get(metadata, "objects", meta_key)
    if len(check.items(objects, objects_path)) != len(annotations):
        raise check.error(
            f"{objects_path!r} has {len(objects)} entries but {annotations_path!r} has {len(annotations)}"
        )
    confidence = [
        check.number(
            *check.get(check.mapping(raw, f"{objects_path}[{i}]"), "confidence", f"{objects_path}[{i}]")
        )
        for i, raw in enumerate(objects)
    ]

    human, human_path = check.get(metadata, "human-annotated", meta_key)
    if human not in ("yes", "no"):
        raise check.error(f"{human_path!r} must be 'yes' or 'no', got {human!r}")
    kind, kind_path = check.get(metadata, "type", meta_key)
    if kind != OBJECT_DETECTION_TYPE:
        raise check.error(f"{kind_path!r} must be {OBJECT_DETECTION_TYPE!r}, got {kind!r}")
    raw_class_map, class_map_path = check.get(metadata, "class-map", meta_key)
    class_map = {}
    for key, name in check.mapping(raw_class_map, class_map_path).items():
        if not (key.isascii() and key.isdigit()):
            raise check.error(f"{class_map_path!r} key {key!r} is not a class id")
        class_map[int(key)] = check.text(name, f"{class_map_path}.{key}")
    job_name = check.text(*check.get(metadata, "job-name", meta_key))

    image = LabeledImage(
        object_id, source_ref, _image_id(source_ref), width_height[0], width_height[1], human == "yes"
    )
    return _ParsedLine(image, ltwh, confidence, class_id, class_map, job_name.removeprefix(JOB_NAME_PREFIX))


def parse_output_manifest(
    lines: Iterable[str], label_attribute: str, source_name: str = "output.manifest"
) -> OutputManifest:
    """Parse and validate an output manifest; blank lines are skipped and do not count as objects.

    A line without the label attribute whose metadata carries ``failure-reason`` is a failed object: it is
    kept (``LabeledImage.failure_reason``, size 0 x 0) and has no boxes.
    """
    images: list[LabeledImage] = []
    raw_lines: list[str] = []
    ltwh: list[list[float]] = []
    box_image: list[int] = []
    box_width: list[int] = []
    box_height: list[int] = []
    confidence: list[float] = []
    class_id: list[int] = []
    class_map: dict[int, str] = {}
    job_name: str | None = None
    for line_number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            continue
        check = JsonChecker(f"{source_name} line {line_number}")
        parsed = _parse_line(stripped, check, len(images), label_attribute)
        if parsed.job_name is not None:
            if job_name is None:
                job_name = parsed.job_name
            elif parsed.job_name != job_name:
                raise check.error(f"job {parsed.job_name!r} differs from {job_name!r} of the lines before")
        for key, name in parsed.class_map.items():
            if class_map.setdefault(key, name) != name:
                raise check.error(f"class {key} is {name!r} here but {class_map[key]!r} on an earlier line")
        n_boxes = len(parsed.ltwh)
        box_image.extend([len(images)] * n_boxes)
        box_width.extend([parsed.image.width] * n_boxes)
        box_height.extend([parsed.image.height] * n_boxes)
        ltwh.extend(parsed.ltwh)
        confidence.extend(parsed.confidence)
        class_id.extend(parsed.class_id)
        images.append(parsed.image)
        raw_lines.append(stripped)
    if not images:
        raise ManifestError(f"{source_name} has no lines")
    consolidated = BoxTable.build(
        image=box_image,
        xyxy=ltwh_pixels_to_xyxy(
            np.asarray(ltwh).reshape(-1, 4), np.asarray(box_width), np.asarray(box_height)
        ),
        score=confidence,
        class_id=class_id,
    )
    return OutputManifest(
        label_attribute=label_attribute,
        images=images,
        consolidated=consolidated,
        class_map=dict(sorted(class_map.items())),
        job_name=job_name or "",
        raw_lines=raw_lines,
    )


@dataclass(frozen=True)
class ManifestSplit:
    train_lines: list[str]
    validation_lines: list[str]
    excluded_failed: int  # lines without the label attribute (failed objects), left out of both


def split_manifest(
    lines: Iterable[str],
    label_attribute: str,
    *,
    seed: int,
    train_fraction: float = 0.8,
    source_name: str = "output.manifest",
) -> ManifestSplit:
    """Shuffle the labeled lines with ``seed`` and cut them into train and validation sets.

    The train set gets ``round(n * train_fraction)`` lines, kept between 1 and n - 1 so that neither set is
    empty. Failed objects have no label to train on and are excluded and counted.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must lie strictly between 0 and 1, got {train_fraction}")
    labeled: list[str] = []
    excluded = 0
    for line_number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            continue
        check = JsonChecker(f"{source_name} line {line_number}")
        obj = check.decode(stripped)
        if not isinstance(obj, dict):
            raise check.error(f"must be a JSON object, got {_json_type(obj)}")
        if label_attribute in obj:
            labeled.append(stripped)
        else:
            excluded += 1
    n = len(labeled)
    if n < 2:
        raise ManifestError(
            f"Cannot split {n} labeled manifest line(s) (after excluding {excluded} failed): training and "
            "validation each need at least one labeled image"
        )
    order = np.random.default_rng(seed).permutation(n)
    n_train = min(max(round(n * train_fraction), 1), n - 1)
    return ManifestSplit(
        train_lines=[labeled[i] for i in order[:n_train]],
        validation_lines=[labeled[i] for i in order[n_train:]],
        excluded_failed=excluded,
    )


def manifest_bytes(lines: Iterable[str]) -> bytes:
    """JSON Lines bytes of ``lines``, each ending in a newline."""
    return "".join(line.rstrip("\r\n") + "\n" for line in lines).encode("utf-8")


def count_samples(data: bytes) -> int:
    """Number of non-blank lines of a manifest: the ``num_training_samples`` of a training job."""
    return sum(1 for line in data.splitlines() if line.strip())
