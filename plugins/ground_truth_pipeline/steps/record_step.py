"""Settle the class's labeled-image record once the labeling job has ended."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from ground_truth_pipeline.aws_clients import AwsClients
from ground_truth_pipeline.labeling_output import read_output_manifest
from ground_truth_pipeline.steps.claims import labeled_images_of
from ground_truth_pipeline.steps.label_step import LABEL_ATTRIBUTE_NAME
from ground_truth_pipeline.steps.run_settings import ExperimentStep

log = logging.getLogger(__name__)


def record_labeled_images(
    experiment: dict[str, str],
    labeling_job: Mapping[str, Any],
    context: Mapping[str, Any],
    clients: AwsClients | None = None,
) -> dict[str, int]:
    """Mark the images the job labeled as labeled for the class; release the ones it could not label."""
    step = ExperimentStep.from_context(experiment, context, clients)
    layout, store = step.layout, step.store
    manifest = read_output_manifest(
        store, layout.labeling_job_key(labeling_job["LabelingJobName"]), LABEL_ATTRIBUTE_NAME
    )
    labeled = {image.image_id for image in manifest.images if image.failure_reason is None}
    asked = dict(zip(step.selection["labeled_image_ids"], step.labeled_source_uris(), strict=True))
    marked, released = labeled_images_of(step.clients, step.run).finish(
        labeled=[uri for image_id, uri in asked.items() if image_id in labeled],
        not_labeled=[uri for image_id, uri in asked.items() if image_id not in labeled],
    )
    run_record = {
        "run_id": step.run.run_id,
        "labeling_job": labeling_job["LabelingJobName"],
        "output_manifest_uri": layout.uri_of_key(layout.output_manifest_key(labeling_job["LabelingJobName"])),
        "labeled_images": marked,
        "label_categories": step.label_categories(),
    }
    store.write_bytes(layout.labeled_run_key, json.dumps(run_record).encode(), "application/json")
    log.info(
        "Recorded %d images as labeled for %s; released %d the job did not label for a later run",
        marked,
        step.run.class_name,
        released,
    )
    return {"labeled": marked, "released": released}
