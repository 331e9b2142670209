"""The Ground Truth labeling-job operations: CreateLabelingJob, DescribeLabelingJob, ListLabelingJobs,
StopLabelingJob.

Names are unique regardless of case, as SageMaker's lower-cased ARNs imply, and are looked up the same way.
ListLabelingJobs pages as every List<Kind>Jobs does (``job_api.list_page``), oldest first unless asked
otherwise. Stopping a job that has already ended is a ValidationException naming its status.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.errors import ResourceInUse, ResourceNotFound, ValidationError
from local_aws.sagemaker_service.job_api import list_page
from local_aws.sagemaker_service.job_runner import Engine, load_object
from local_aws.sagemaker_service.job_table import RUNNABLE_STATUSES
from local_aws.sagemaker_service.labeling_jobs import LabelingJob, LabelingJobStore
from local_aws.sagemaker_service.protocol import Handler


class LabelingApi:
    def __init__(
        self,
        store: LabelingJobStore,
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
            "CreateLabelingJob": self.create_labeling_job,
            "DescribeLabelingJob": self.describe_labeling_job,
            "ListLabelingJobs": self.list_labeling_jobs,
            "StopLabelingJob": self.stop_labeling_job,
        }

    def create_labeling_job(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["LabelingJobName"]
        try:
            existing = self.store.get(name)
        except ResourceNotFound:
            existing = None
        if existing is not None:
            raise ResourceInUse(
                "Job name must be unique within an AWS account and region, and a job with this name already"
                f" exists ({existing.arn})"
            )
        if self.engine.check is not None:
            check = load_object(self.engine.check)
            try:
                check(params, self.config)
            except ValueError as error:
                raise ValidationError(str(error)) from error
        job = self.store.create(params, self.config)
        self.on_change()
        return {"LabelingJobArn": job.arn}

    def describe_labeling_job(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self.store.get(params["LabelingJobName"])
        return job.request | {
            "LabelingJobName": job.name,
            "LabelingJobStatus": job.status,
            "LabelCounters": job.counters,
            "FailureReason": job.failure_reason,
            "CreationTime": job.creation_time,
            "LastModifiedTime": job.last_modified_time,
            "JobReferenceCode": job.job_reference_code,
            "LabelingJobArn": job.arn,
            "LabelingJobOutput": _output(job),
        }

    def list_labeling_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        page, next_token = list_page(self.store.all(), params)
        return {"LabelingJobSummaryList": [_summary(job) for job in page], "NextToken": next_token}

    def stop_labeling_job(self, params: dict[str, Any]) -> None:
        name = params["LabelingJobName"]
        job = self.store.get(name)
        if job.status == "Stopping":
            return
        if job.status not in RUNNABLE_STATUSES:
            raise ValidationError(
                f"Labeling job {job.name} is {job.status}; only an Initializing or InProgress job can be"
                " stopped."
            )
        self.store.request_stop(name)
        self.on_change()


def _output(job: LabelingJob) -> dict[str, Any] | None:
    if job.output_dataset_s3_uri is None:
        return None
    return {
        "OutputDatasetS3Uri": job.output_dataset_s3_uri,
        "FinalActiveLearningModelArn": job.final_active_learning_model_arn,
    }


def _summary(job: LabelingJob) -> dict[str, Any]:
    human_task = job.request["HumanTaskConfig"]
    return {
        "LabelingJobName": job.name,
        "LabelingJobArn": job.arn,
        "CreationTime": job.creation_time,
        "LastModifiedTime": job.last_modified_time,
        "LabelingJobStatus": job.status,
        "LabelCounters": job.counters,
        "WorkteamArn": human_task["WorkteamArn"],
        "PreHumanTaskLambdaArn": human_task.get("PreHumanTaskLambdaArn"),
        "AnnotationConsolidationLambdaArn": human_task.get("AnnotationConsolidationConfig", {}).get(
            "AnnotationConsolidationLambdaArn"
        ),
        "FailureReason": job.failure_reason,
        "LabelingJobOutput": _output(job),
        "InputConfig": job.request["InputConfig"],
    }
