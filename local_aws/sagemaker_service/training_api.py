"""The training-job operations: CreateTrainingJob, DescribeTrainingJob, ListTrainingJobs, StopTrainingJob.

Names are unique regardless of case and looked up the same way; a missing job is a ValidationException
("Requested resource not found."), as AWS answers it. DescribeTrainingJob echoes the request with
SageMaker's defaults (StoppingCondition, one instance) and adds the job's state: ModelArtifacts names where
the model is written (``<S3OutputPath>/<job>/output/model.tar.gz``, known from the start as on AWS;
nothing is there until the job uploads it), TrainingTimeInSeconds and BillableTimeInSeconds once the job
ended (one instance, no spot savings: the two are equal).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.errors import ResourceInUse, ValidationError
from local_aws.sagemaker_service.job_api import echoed_request, list_page
from local_aws.sagemaker_service.job_runner import Engine, load_object
from local_aws.sagemaker_service.job_table import RUNNABLE_STATUSES
from local_aws.sagemaker_service.protocol import Handler
from local_aws.sagemaker_service.training_jobs import TrainingJob, TrainingJobStore
from local_aws.sagemaker_service.training_requests import model_artifact_uri, stopping_condition

_DEFAULT_FLAGS = (
    "EnableNetworkIsolation",
    "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining",
)


class TrainingApi:
    def __init__(
        self,
        store: TrainingJobStore,
        config: LocalAwsConfig,
        engine: Engine,
        on_change: Callable[[], None],
    ) -> None:
        self.store = store
        self.config = config
        self.engine = engine
        self.on_change = on_change

    def handlers(self) -> dict[str, Handler]:
        return {
            "CreateTrainingJob": self.create_training_job,
            "DescribeTrainingJob": self.describe_training_job,
            "ListTrainingJobs": self.list_training_jobs,
            "StopTrainingJob": self.stop_training_job,
        }

    def create_training_job(self, params: dict[str, Any]) -> dict[str, Any]:
        existing = self.store.find(params["TrainingJobName"])
        if existing is not None:
            raise ResourceInUse(
                "Training job names must be unique within an AWS account and region, and a training job with"
                f" this name already exists ({existing.arn})"
            )
        if self.engine.check is not None:
            check = load_object(self.engine.check)
            try:
                check(params, self.config)
            except ValueError as error:
                raise ValidationError(str(error)) from error
        job = self.store.create(params, self.config)
        self.on_change()
        return {"TrainingJobArn": job.arn}

    def describe_training_job(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self.store.get(params["TrainingJobName"])
        flags = {flag: job.request.get(flag, False) for flag in _DEFAULT_FLAGS}
        seconds = _training_seconds(job)
        return (
            echoed_request("DescribeTrainingJob", job.request)
            | flags
            | {
                "TrainingJobName": job.name,
                "TrainingJobArn": job.arn,
                "ModelArtifacts": {
                    "S3ModelArtifacts": model_artifact_uri(
                        job.request["OutputDataConfig"]["S3OutputPath"], job.name
                    )
                },
                "TrainingJobStatus": job.status,
                "SecondaryStatus": job.secondary_status,
                "FailureReason": job.failure_reason,
                "ResourceConfig": {"InstanceCount": 1, **job.request.get("ResourceConfig", {})},
                "StoppingCondition": stopping_condition(job.request),
                "CreationTime": job.creation_time,
                "TrainingStartTime": job.training_start_time,
                "TrainingEndTime": job.training_end_time,
                "LastModifiedTime": job.last_modified_time,
                "SecondaryStatusTransitions": job.transitions,
                "FinalMetricDataList": job.final_metrics or None,
                "TrainingTimeInSeconds": seconds,
                "BillableTimeInSeconds": seconds,
            }
        )

    def list_training_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        # The stack keeps no warm pools and has no training plans: no job matches a filter on them.
        unmatched = "WarmPoolStatusEquals" in params or "TrainingPlanArnEquals" in params
        page, next_token = list_page([] if unmatched else self.store.all(), params)
        return {"TrainingJobSummaries": [_summary(job) for job in page], "NextToken": next_token}

    def stop_training_job(self, params: dict[str, Any]) -> None:
        job = self.store.get(params["TrainingJobName"])
        if job.status == "Stopping":
            return
        if job.status not in RUNNABLE_STATUSES:
            raise ValidationError(
                f"Training job {job.name} is {job.status}; only an InProgress job can be stopped."
            )
        self.store.request_stop(job.name)
        self.on_change()


def _training_seconds(job: TrainingJob) -> int | None:
    if job.training_start_time is None or job.training_end_time is None:
        return None
    return max(1, math.ceil(job.training_end_time - job.training_start_time))


def _summary(job: TrainingJob) -> dict[str, Any]:
    return {
        "TrainingJobName": job.name,
        "TrainingJobArn": job.arn,
        "CreationTime": job.creation_time,
        "TrainingEndTime": job.training_end_time,
        "LastModifiedTime": job.last_modified_time,
        "TrainingJobStatus": job.status,
        "SecondaryStatus": job.secondary_status,
    }
