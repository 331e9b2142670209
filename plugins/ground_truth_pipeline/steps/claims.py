"""The class's labeled-image record as the steps see it: claims of a run, and releasing them."""

from __future__ import annotations

import logging
from typing import Any

from ground_truth_pipeline.aws_clients import AwsClients
from ground_truth_pipeline.experiment import ExperimentRun
from ground_truth_pipeline.labeled_images import LabeledImages
from ground_truth_pipeline.steps.run_settings import ExperimentStep

log = logging.getLogger(__name__)


def labeled_images_of(clients: AwsClients, run: ExperimentRun) -> LabeledImages:
    """The record of the run's class, as the run and its labeling job see it."""
    return LabeledImages(
        clients.s3,
        run.bucket,
        run.layout.class_root_key,
        run.run_id,
        run.resource_name("label"),
        lambda job_name: labeling_job_status(clients.sagemaker, job_name),
    )


def labeling_job_status(sagemaker: Any, job_name: str) -> str | None:
    """The job's status, ``None`` when no such job exists."""
    from botocore.exceptions import ClientError

    try:
        return sagemaker.describe_labeling_job(LabelingJobName=job_name)["LabelingJobStatus"]
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("ResourceNotFound", "ValidationException"):
            return None
        raise


def release_claims(step: ExperimentStep) -> int:
    """Free the images this run claimed but will not send to labeling; how many were freed."""
    _, released = labeled_images_of(step.clients, step.run).finish(
        labeled=[], not_labeled=step.labeled_source_uris()
    )
    log.info("Released %d images claimed by this run, so that a later run can label them", released)
    return released
