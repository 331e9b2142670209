"""The train group: the 80/20 augmented-manifest split and the training job request."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from ground_truth_pipeline.aws_clients import AwsClients
from ground_truth_pipeline.manifests import count_samples, manifest_bytes, split_manifest
from ground_truth_pipeline.sagemaker_requests import training_job_request as build_training_job_request
from ground_truth_pipeline.steps.label_step import LABEL_ATTRIBUTE_NAME
from ground_truth_pipeline.steps.run_settings import ExperimentStep

log = logging.getLogger(__name__)


def split_output_manifest(
    experiment: dict[str, str],
    labeling_job: Mapping[str, Any],
    context: Mapping[str, Any],
    clients: AwsClients | None = None,
) -> dict[str, Any]:
    """Write the train and validation manifests; returns their URIs and sample counts."""
    step = ExperimentStep.from_context(experiment, context, clients)
    layout, store = step.layout, step.store
    job_name = labeling_job["LabelingJobName"]
    manifest_key = layout.output_manifest_key(job_name)
    with store.open_text(manifest_key) as stream:
        lines = stream.read().splitlines()
    split = split_manifest(lines, LABEL_ATTRIBUTE_NAME, seed=int(step.params["split_seed"]))
    if split.excluded_failed:
        log.warning("%d images failed labeling and are left out of training", split.excluded_failed)
    train_data = manifest_bytes(split.train_lines)
    validation_data = manifest_bytes(split.validation_lines)
    store.write_bytes(layout.train_manifest_key, train_data, content_type="application/x-ndjson")
    store.write_bytes(layout.validation_manifest_key, validation_data, content_type="application/x-ndjson")
    label_categories = json.loads(store.read_bytes(layout.label_categories_key))
    return {
        "train_manifest_uri": layout.uri_of_key(layout.train_manifest_key),
        "validation_manifest_uri": layout.uri_of_key(layout.validation_manifest_key),
        "num_training_samples": count_samples(train_data),
        "num_validation_samples": count_samples(validation_data),
        "excluded_failed": split.excluded_failed,
        "num_classes": len(label_categories["labels"]),
        "attribute_names": ["source-ref", LABEL_ATTRIBUTE_NAME],
    }


def training_job_request(
    experiment: dict[str, str],
    split: Mapping[str, Any],
    context: Mapping[str, Any],
    clients: AwsClients | None = None,
) -> dict[str, Any]:
    """The validated CreateTrainingJob request of the built-in object-detection algorithm."""
    step = ExperimentStep.from_context(experiment, context, clients)
    params = step.params
    return build_training_job_request(
        job_name=step.run.resource_name("train"),
        role_arn=step.settings.role_arn(),
        region=step.clients.region,
        train_manifest_uri=split["train_manifest_uri"],
        validation_manifest_uri=split["validation_manifest_uri"],
        attribute_names=list(split["attribute_names"]),
        output_uri=step.layout.training_output_uri,
        num_training_samples=int(split["num_training_samples"]),
        num_classes=int(split["num_classes"]),
        hyperparameters=dict(params["training_hyperparameters"]),
        instance_type=params["training_instance_type"],
        local_stack=step.clients.is_local_stack,
    )
