"""The label group: the CreateLabelingJob request of this run (the operator and sensor do the rest)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ground_truth_pipeline.aws_clients import AwsClients
from ground_truth_pipeline.sagemaker_requests import PrivateTeam, PublicCrowd
from ground_truth_pipeline.sagemaker_requests import labeling_job_request as build_labeling_job_request
from ground_truth_pipeline.steps.run_settings import ExperimentStep

LABEL_ATTRIBUTE_NAME = "category"


def labeling_job_request(
    experiment: dict[str, str], context: Mapping[str, Any], clients: AwsClients | None = None
) -> dict[str, Any]:
    """The validated request; its name is derived from the run, so a retry finds the same job."""
    step = ExperimentStep.from_context(experiment, context, clients)
    params, layout = step.params, step.layout
    workteam_arn = str(params.get("workteam_arn") or "").strip()
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
