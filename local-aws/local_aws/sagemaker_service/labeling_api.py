"""The Ground Truth labeling-job operations: CreateLabelingJob, DescribeLabelingJob, ListLabelingJobs,
StopLabelingJob.

Names are unique regardless of case, as SageMaker's lower-cased ARNs imply, and are looked up the same way.
ListLabelingJobs pages as every List<Kind>Jobs does (``job_api.list_page``), oldest first unless asked
otherwise. Stopping a job that has already ended is a ValidationException naming its status.
"""

from __future__ import annotations

from typing import Any

from local_aws.sagemaker_service.job_api import JobApi
from local_aws.sagemaker_service.labeling_jobs import LabelingJob, LabelingJobStore


class LabelingApi(JobApi[LabelingJob]):
    store: LabelingJobStore
    kind = "Labeling"
    summaries_key = "LabelingJobSummaryList"
    stoppable = "an Initializing or InProgress job"

    def create(self, params: dict[str, Any]) -> LabelingJob:
        return self.store.create(params, self.config)

    def describe_job(self, params: dict[str, Any]) -> dict[str, Any]:
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

    def summary(self, job: LabelingJob) -> dict[str, Any]:
        human_task = job.request["HumanTaskConfig"]
        return {
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


def _output(job: LabelingJob) -> dict[str, Any] | None:
    if job.output_dataset_s3_uri is None:
        return None
    return {
        "OutputDatasetS3Uri": job.output_dataset_s3_uri,
        "FinalActiveLearningModelArn": job.final_active_learning_model_arn,
    }
