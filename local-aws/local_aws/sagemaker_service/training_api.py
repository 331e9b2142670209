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
from collections.abc import Sequence
from typing import Any

from local_aws.sagemaker_service.job_api import JobApi, echoed_request
from local_aws.sagemaker_service.training_jobs import TrainingJob, TrainingJobStore
from local_aws.sagemaker_service.training_requests import model_artifact_uri, stopping_condition

_DEFAULT_FLAGS = (
    "EnableNetworkIsolation",
    "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining",
)


class TrainingApi(JobApi[TrainingJob]):
    store: TrainingJobStore
    kind = "Training"
    summaries_key = "TrainingJobSummaries"

    def create(self, params: dict[str, Any]) -> TrainingJob:
        return self.store.create(params, self.config)

    def describe_job(self, params: dict[str, Any]) -> dict[str, Any]:
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

    def listed(self, params: dict[str, Any]) -> Sequence[TrainingJob]:
        # The stack keeps no warm pools and has no training plans: no job matches a filter on them.
        if "WarmPoolStatusEquals" in params or "TrainingPlanArnEquals" in params:
            return []
        return self.store.all()

    def summary(self, job: TrainingJob) -> dict[str, Any]:
        return {
            "TrainingEndTime": job.training_end_time,
            "SecondaryStatus": job.secondary_status,
        }


def _training_seconds(job: TrainingJob) -> int | None:
    if job.training_start_time is None or job.training_end_time is None:
        return None
    return max(1, math.ceil(job.training_end_time - job.training_start_time))
