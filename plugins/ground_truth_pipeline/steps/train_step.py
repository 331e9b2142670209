"""The train group: the 80/20 augmented-manifest split and the training job request.

By default a run trains on every label of its class so far: the output manifests of all runs of the class
whose labels were recorded (``labeled-runs/`` under the class's prefix), this run's included, so that a
backfill's last run trains on the labels of all its days. The param ``train_on_all_class_labels`` false
trains on this run's labels only.

The request holds to AWS's documented hyperparameters, extended only by the networks that the options
``[ground_truth_object_detection] extra_base_networks`` and ``extra_base_networks_min_image_shape`` admit
(``configured_extra_base_networks``): a training service that accepts more networks than AWS's says so there.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from airflow.sdk.configuration import conf

from ground_truth_pipeline.aws_clients import AwsClients
from ground_truth_pipeline.configuration import CONFIG_SECTION
from ground_truth_pipeline.experiment import ExperimentLayout
from ground_truth_pipeline.manifests import count_samples, manifest_bytes, split_manifest
from ground_truth_pipeline.object_store import S3ObjectStore, split_s3_uri
from ground_truth_pipeline.sagemaker_requests import (
    AWS_MIN_IMAGE_SHAPE,
    EXTRA_BASE_NETWORKS_MIN_IMAGE_SHAPE_OPTION,
    EXTRA_BASE_NETWORKS_OPTION,
    ExtraBaseNetworks,
)
from ground_truth_pipeline.sagemaker_requests import training_job_request as build_training_job_request
from ground_truth_pipeline.steps.label_step import LABEL_ATTRIBUTE_NAME
from ground_truth_pipeline.steps.run_settings import ExperimentStep

log = logging.getLogger(__name__)

TRAIN_ON_ALL_CLASS_LABELS_PARAM = "train_on_all_class_labels"


def split_output_manifest(
    experiment: dict[str, str],
    labeling_job: Mapping[str, Any],
    context: Mapping[str, Any],
    clients: AwsClients | None = None,
) -> dict[str, Any]:
    """Write the train and validation manifests; returns their URIs and sample counts."""
    step = ExperimentStep.from_context(experiment, context, clients)
    layout, store = step.layout, step.store
    own_manifest_key = layout.output_manifest_key(labeling_job["LabelingJobName"])
    categories = step.label_categories()
    manifest_keys = [own_manifest_key]
    if step.params.get(TRAIN_ON_ALL_CLASS_LABELS_PARAM, True):
        manifest_keys = class_output_manifest_keys(store, layout, own_manifest_key, categories)
    lines: list[str] = []
    for key in manifest_keys:
        with store.open_text(key) as stream:
            lines += stream.read().splitlines()
    log.info(
        "Training on the labels of %d runs of %s: %s", len(manifest_keys), step.run.class_name, manifest_keys
    )
    split = split_manifest(lines, LABEL_ATTRIBUTE_NAME, seed=int(step.params["split_seed"]))
    if split.excluded_failed:
        log.warning("%d images failed labeling and are left out of training", split.excluded_failed)
    train_data = manifest_bytes(split.train_lines)
    validation_data = manifest_bytes(split.validation_lines)
    store.write_bytes(layout.train_manifest_key, train_data, content_type="application/x-ndjson")
    store.write_bytes(layout.validation_manifest_key, validation_data, content_type="application/x-ndjson")
    return {
        "train_manifest_uri": layout.uri_of_key(layout.train_manifest_key),
        "validation_manifest_uri": layout.uri_of_key(layout.validation_manifest_key),
        "num_training_samples": count_samples(train_data),
        "num_validation_samples": count_samples(validation_data),
        "excluded_failed": split.excluded_failed,
        "num_classes": len(categories),
        "attribute_names": ["source-ref", LABEL_ATTRIBUTE_NAME],
        "labeled_runs": len(manifest_keys),
    }


def class_output_manifest_keys(
    store: S3ObjectStore, layout: ExperimentLayout, own_key: str, categories: list[str]
) -> list[str]:
    """The output manifests of every recorded run of the class, in key order, this run's included once.

    A run labeled with other label categories is left out: its class ids would mean other classes.
    """
    keys = []
    for record_key in store.list_keys(layout.labeled_runs_prefix):
        record = json.loads(store.read_bytes(record_key))
        if record["label_categories"] != categories:
            log.warning(
                "Not training on %s: labeled for %s, this run for %s",
                record["output_manifest_uri"],
                record["label_categories"],
                categories,
            )
            continue
        bucket, key = split_s3_uri(record["output_manifest_uri"])
        if bucket != layout.bucket:
            raise ValueError(
                f"{record_key} names {record['output_manifest_uri']}, outside s3://{layout.bucket}"
            )
        keys.append(key)
    return sorted({*keys, own_key})


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
        extra_base_networks=configured_extra_base_networks(),
    )


def configured_extra_base_networks() -> ExtraBaseNetworks:
    """The ``base_network`` values admitted beyond AWS's and their smallest ``image_shape``, from the
    options ``extra_base_networks`` (default: none) and ``extra_base_networks_min_image_shape`` (default:
    AWS's 300)."""
    return ExtraBaseNetworks.from_options(
        conf.get(CONFIG_SECTION, EXTRA_BASE_NETWORKS_OPTION, fallback=""),
        conf.get(
            CONFIG_SECTION, EXTRA_BASE_NETWORKS_MIN_IMAGE_SHAPE_OPTION, fallback=str(AWS_MIN_IMAGE_SHAPE)
        ),
    )
