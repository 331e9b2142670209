"""The label group: the CreateLabelingJob request of this run (the operator and sensor do the rest)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ground_truth_pipeline.aws_clients import AwsClients
from ground_truth_pipeline.experiment import ExperimentRun
from ground_truth_pipeline.sagemaker_requests import (
    PrivateTeam,
    PublicCrowd,
)
from ground_truth_pipeline.sagemaker_requests import (
    labeling_job_request as build_labeling_job_request,
)
from ground_truth_pipeline.steps.run_settings import RunSettings

LABEL_ATTRIBUTE_NAME = "category"


def labeling_job_request(
    experiment: dict[str, str], context: Mapping[str, Any], clients: AwsClients | None = None
) -> dict[str, Any]:
    """The validated request; its name is derived from the run, so a retry finds the same job."""
    settings = RunSettings.from_context(context, clients)
    params = settings.params
    run = ExperimentRun.from_dict(experiment)
    layout = run.layout
    workteam_arn = str(params.get("workteam_arn") or "").strip()
    workforce = PrivateTeam(workteam_arn) if workteam_arn else PublicCrowd(float(params["task_price_usd"]))
    request = build_labeling_job_request(
        job_name=run.resource_name("label"),
        label_attribute_name=LABEL_ATTRIBUTE_NAME,
        manifest_uri=layout.uri_of_key(layout.input_manifest_key),
        output_uri=layout.labeling_output_uri,
        role_arn=settings.role_arn(),
        label_categories_uri=layout.uri_of_key(layout.label_categories_key),
        template_uri=layout.uri_of_key(layout.instructions_template_key),
        region=settings.clients.region,
        workforce=workforce,
        class_name=run.class_name,
        workers_per_object=int(params["workers_per_image"]),
        task_time_limit_s=int(params["task_time_limit_s"]),
        max_concurrent_tasks=int(params["max_concurrent_tasks"]),
        auto_labeling=bool(params["auto_labeling"]),
    )
    return request
