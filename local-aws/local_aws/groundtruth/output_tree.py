"""A labeling job's output tree in S3, ``<S3OutputPath>/<job name>/``, in AWS's layout and JSON.

- ``manifests/output/output.manifest``: one line per input line, in order: the input fields, the label
  attribute and ``<attribute>-metadata`` (or, for a failed object, metadata with its ``failure-reason``);
- ``manifests/intermediate/<iteration>/output.manifest``: the same after each iteration, with the lines of
  objects not labeled yet copied unchanged;
- ``annotations/worker-response/iteration-<N>/<datasetObjectId>/<YYYY-MM-DD_HH:MM:SS>.json``: the answers
  of the workers who labeled an object;
- ``annotations/consolidated-annotation/consolidation-response/iteration-<N>/<YYYY-MM-DD_HH:MM:SS>.json``:
  the consolidated labels of one batch.

With automated data labeling, each iteration ``<N>`` that trains a detector also writes (AWS documents
what these folders hold, not their inner layout; the layout here is what the reference notebook's readers
expect, an iteration number first):

- ``training/<N>/input/{train,validation}.manifest``: the training job's channels (human labels);
  ``training/<N>/output/<training job>/output/model.tar.gz``: its model;
- ``activelearning/<N>/validation/``: the validation set's input manifest, the batch transform's input and
  output, and ``threshold.json`` (each image's confidence and mean IoU, and the threshold chosen);
- ``activelearning/<N>/auto-annotation/auto_annotator_output.txt``: one line per machine-labeled object,
  its datasetObjectId, a space and the JSON of its label attribute and metadata;
- ``inference/<N>/``: the batch transform's input and output over the unlabeled objects.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from local_aws.groundtruth.consolidation import ConsolidatedBox
from local_aws.groundtruth.crowd import WorkerAnswer
from local_aws.s3_objects import split_s3_uri

FILE_TIME_FORMAT = "%Y-%m-%d_%H:%M:%S"
CREATION_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
OBJECT_DETECTION_TYPE = "groundtruth/object-detection"


class OutputTree:
    """Keys of one job's output files, in the bucket of its S3OutputPath."""

    def __init__(self, output_path: str, job_name: str) -> None:
        self.bucket, prefix = split_s3_uri(output_path, key_required=False)
        self.prefix = f"{prefix.strip('/')}/{job_name}/".lstrip("/")

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    @property
    def output_manifest_key(self) -> str:
        return f"{self.prefix}manifests/output/output.manifest"

    def intermediate_manifest_key(self, iteration: int) -> str:
        return f"{self.prefix}manifests/intermediate/{iteration}/output.manifest"

    def worker_response_key(self, iteration: int, object_id: int, submitted: datetime) -> str:
        return (
            f"{self.prefix}annotations/worker-response/iteration-{iteration}/{object_id}/"
            f"{submitted:{FILE_TIME_FORMAT}}.json"
        )

    def training_prefix(self, iteration: int) -> str:
        return f"{self.prefix}training/{iteration}/"

    def validation_prefix(self, iteration: int) -> str:
        return f"{self.prefix}activelearning/{iteration}/validation/"

    def auto_annotator_output_key(self, iteration: int) -> str:
        return f"{self.prefix}activelearning/{iteration}/auto-annotation/auto_annotator_output.txt"

    def inference_prefix(self, iteration: int) -> str:
        return f"{self.prefix}inference/{iteration}/"

    def consolidation_response_key(self, iteration: int, consolidated: datetime) -> str:
        return (
            f"{self.prefix}annotations/consolidated-annotation/consolidation-response/iteration-{iteration}/"
            f"{consolidated:{FILE_TIME_FORMAT}}.json"
        )


def utc_now() -> datetime:
    """The current time as the output tree records times: UTC, without a time zone (naive)."""
    return datetime.now(UTC).replace(tzinfo=None)


def aws_timestamp(moment: datetime) -> str:
    """A worker answer's time as Ground Truth writes it: UTC with milliseconds and a ``Z``."""
    return moment.isoformat(timespec="milliseconds") + "Z"


def worker_answer(
    answer: WorkerAnswer,
    accepted: datetime,
    submitted: datetime,
    element_name: str,
    image_size: tuple[int, int],
) -> dict[str, Any]:
    """One entry of a worker-response file's ``answers``, with the boxes under the element's name."""
    width, height = image_size
    return {
        "workerId": answer.worker_id,
        "acceptanceTime": aws_timestamp(accepted),
        "submissionTime": aws_timestamp(submitted),
        "timeSpentInSeconds": answer.seconds,
        "answerContent": {
            element_name: {
                "boundingBoxes": [box.answer() for box in answer.boxes],
                "inputImageProperties": {"width": width, "height": height},
            }
        },
    }


def labeled_content(
    label_attribute: str,
    job_name: str,
    categories: Sequence[str],
    image_size: tuple[int, int, int],
    boxes: Sequence[ConsolidatedBox],
    created: datetime,
    *,
    human_annotated: bool = True,
) -> dict[str, Any]:
    """The label attribute and metadata of a labeled object; ``image_size`` is width, height, depth.

    ``boxes`` are the consolidated boxes of the workers or, for a machine label, the detector's boxes with
    its scores as their confidences."""
    class_ids = {name: class_id for class_id, name in enumerate(categories)}
    width, height, depth = image_size
    annotations = [
        {
            "class_id": class_ids[c.box.label],
            "left": c.box.left,
            "top": c.box.top,
            "width": c.box.width,
            "height": c.box.height,
        }
        for c in boxes
    ]
    used = sorted({class_ids[c.box.label] for c in boxes})
    return {
        label_attribute: {
            "image_size": [{"width": width, "height": height, "depth": depth}],
            "annotations": annotations,
        },
        f"{label_attribute}-metadata": {
            "objects": [{"confidence": c.confidence} for c in boxes],
            "class-map": {str(class_id): categories[class_id] for class_id in used},
            "type": OBJECT_DETECTION_TYPE,
            "human-annotated": "yes" if human_annotated else "no",
            "creation-date": created.strftime(CREATION_DATE_FORMAT),
            "job-name": f"labeling-job/{job_name}",
        },
    }


def failed_content(label_attribute: str, job_name: str, reason: str) -> dict[str, Any]:
    """The metadata of an object that could not be labeled: its failure reason and no label."""
    return {f"{label_attribute}-metadata": {"failure-reason": reason, "job-name": f"labeling-job/{job_name}"}}


def output_line(fields: dict[str, Any], content: dict[str, Any]) -> str:
    """An output manifest line: the input line's fields followed by (or updated with) ``content``."""
    return json.dumps({**fields, **content})
