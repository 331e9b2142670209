"""The label group: the CreateLabelingJob request of this run (the operator and sensor do the rest)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow.sdk.configuration import conf

from ground_truth_pipeline.aws_clients import AwsClients
from ground_truth_pipeline.configuration import CONFIG_SECTION
from ground_truth_pipeline.labeling_cost import (
    AWS_AUTO_LABELING_MIN_IMAGES,
    DEFAULT_MAX_LABELING_COST_USD,
    check_auto_labeling_dataset,
    check_labeling_cost,
)
from ground_truth_pipeline.labeling_output import LabelPrices
from ground_truth_pipeline.manifests import count_samples
from ground_truth_pipeline.sagemaker_requests import PrivateTeam, PublicCrowd
from ground_truth_pipeline.sagemaker_requests import labeling_job_request as build_labeling_job_request
from ground_truth_pipeline.steps.claims import release_claims
from ground_truth_pipeline.steps.run_settings import ExperimentStep

log = logging.getLogger(__name__)

LABEL_ATTRIBUTE_NAME = "category"


def labeling_job_request(
    experiment: dict[str, str], context: Mapping[str, Any], clients: AwsClients | None = None
) -> dict[str, Any]:
    """The validated request; its name is derived from the run, so a retry finds the same job.

    Fails first, before any job exists, when the run breaks a limit (``check_labeling_limits``); the
    images the run claimed are then released, so that a corrected run can label them at once.
    """
    step = ExperimentStep.from_context(experiment, context, clients)
    params, layout = step.params, step.layout
    workteam_arn = str(params.get("workteam_arn") or "").strip()
    try:
        check_labeling_limits(step)
    except ValueError:
        release_claims(step)
        raise
    workforce = PrivateTeam(workteam_arn) if workteam_arn else PublicCrowd(float(params["task_price_usd"]))
    return build_labeling_job_request(
        job_name=step.run.resource_name("label"),
        label_attribute_name=LABEL_ATTRIBUTE_NAME,
        manifest_uri=layout.uri_of_key(layout.input_manifest_key),
        output_uri=layout.labeling_output_uri,
        role_arn=step.settings.role_arn(),
        label_categories_uri=layout.uri_of_key(layout.label_categories_key),
        template_uri=layout.uri_of_key(layout.instructions_template_key),
        region=step.clients.region,
        workforce=workforce,
        class_name=step.run.class_name,
        workers_per_object=int(params["workers_per_image"]),
        task_time_limit_s=int(params["task_time_limit_s"]),
        max_concurrent_tasks=int(params["max_concurrent_tasks"]),
        auto_labeling=bool(params["auto_labeling"]),
    )


def check_labeling_limits(step: ExperimentStep) -> None:
    """Automated labeling's minimum dataset, then the cost cap, for the images of the input manifest.

    The worst case prices every image as a human label at the run's prices (``LabelPrices.of_run``, as the
    analysis prices them): Ground Truth's per-label fee plus the workers' pay.
    """
    params = step.params
    images = count_samples(step.store.read_bytes(step.layout.input_manifest_key))
    if params["auto_labeling"]:
        check_auto_labeling_dataset(images, auto_labeling_min_images())
    prices = LabelPrices.of_run(params)
    cap = float(params.get("max_labeling_cost_usd", DEFAULT_MAX_LABELING_COST_USD))
    worst_case = check_labeling_cost(images, prices, cap)
    log.info("Labeling %d images costs at most $%.2f (cap $%.2f)", images, worst_case, cap)


def auto_labeling_min_images() -> int:
    """AWS's minimum for automated labeling, unless ``[ground_truth_object_detection]
    auto_labeling_min_images`` sets another (a service that labels automatically from fewer images sets its
    own)."""
    return conf.getint(CONFIG_SECTION, "auto_labeling_min_images", fallback=AWS_AUTO_LABELING_MIN_IMAGES)
