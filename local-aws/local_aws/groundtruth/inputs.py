"""A labeling job's inputs in S3: the input manifest, the label categories and the worker UI template.

Any of them missing or malformed fails the job, with a FailureReason that names the file (and the line).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from local_aws.groundtruth.errors import LabelingJobFailed
from local_aws.s3_objects import read_object, split_s3_uri

MAX_LABEL_CATEGORIES = 10


@dataclass(frozen=True)
class ManifestLine:
    """One data object: its line as read (copied unchanged while unlabeled) and its fields."""

    text: str
    fields: dict[str, Any]

    @property
    def source_ref(self) -> str:
        return self.fields["source-ref"]


def _read(s3: Any, uri: str, what: str) -> bytes:
    try:
        return read_object(s3, uri)
    except (ClientError, BotoCoreError) as err:
        raise LabelingJobFailed(f"ClientError: Could not read the {what} {uri}: {err}") from None


def _text(data: bytes, uri: str, what: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise LabelingJobFailed(f"ClientError: The {what} {uri} is not UTF-8 text ({err.reason})") from None


def read_manifest(s3: Any, uri: str) -> list[ManifestLine]:
    """The data objects of the input manifest, in order; blank lines are not objects."""
    text = _text(_read(s3, uri, "input manifest"), uri, "input manifest")
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped:
            continue
        where = f"ClientError: Line {number} of the input manifest {uri}"
        try:
            fields = json.loads(stripped)
        except json.JSONDecodeError as err:
            raise LabelingJobFailed(f"{where} is not valid JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(fields, dict):
            raise LabelingJobFailed(f"{where} is not a JSON object")
        source_ref = fields.get("source-ref")
        if not isinstance(source_ref, str):
            raise LabelingJobFailed(f'{where} has no "source-ref" string: a bounding-box job labels images')
        try:
            split_s3_uri(source_ref)
        except ValueError as err:
            raise LabelingJobFailed(f'{where}: "source-ref" {err}') from None
        lines.append(ManifestLine(stripped, fields))
    if not lines:
        raise LabelingJobFailed(f"ClientError: The input manifest {uri} has no data objects")
    return lines


def read_label_categories(s3: Any, uri: str) -> list[str]:
    """The label names of the label category configuration ``{"labels": [{"label": ...}, ...]}``."""
    what = "label category configuration"
    text = _text(_read(s3, uri, what), uri, what)
    where = f"ClientError: The {what} {uri}"
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise LabelingJobFailed(f"{where} is not valid JSON ({err.msg} at line {err.lineno})") from None
    entries = document.get("labels") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise LabelingJobFailed(f'{where} must be a JSON object with a non-empty "labels" list')
    if len(entries) > MAX_LABEL_CATEGORIES:
        raise LabelingJobFailed(
            f"{where} has {len(entries)} labels; a bounding-box job allows at most {MAX_LABEL_CATEGORIES}"
        )
    labels = []
    for i, entry in enumerate(entries):
        label = entry.get("label") if isinstance(entry, dict) else None
        if not isinstance(label, str) or not label.strip():
            raise LabelingJobFailed(f'{where}: labels[{i}] must be an object with a non-empty "label" string')
        if label in labels:
            raise LabelingJobFailed(f"{where}: label {label!r} appears more than once")
        labels.append(label)
    return labels


def read_template(s3: Any, uri: str) -> str:
    what = "worker UI template"
    return _text(_read(s3, uri, what), uri, what)
