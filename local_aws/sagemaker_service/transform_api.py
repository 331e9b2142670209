"""The transform-job operations: CreateTransformJob, DescribeTransformJob, ListTransformJobs,
StopTransformJob.

Names are unique regardless of case and looked up the same way; a missing job is a ValidationException,
as AWS answers it. The model must exist and be one of the object-detection algorithm with its model data
(``ModelDataUrl``) when the job is created. ListTransformJobs sorts newest first unless asked otherwise, as
AWS's does. DescribeTransformJob echoes the request with SageMaker's defaults (MaxPayloadInMB 6, one
concurrent transform, SplitType and CompressionType None).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.algorithm_images import check_object_detection_image
from local_aws.sagemaker_service.errors import ResourceInUse, ValidationError
from local_aws.sagemaker_service.job_api import echoed_request, list_page
from local_aws.sagemaker_service.job_runner import Engine, load_object
from local_aws.sagemaker_service.job_table import RUNNABLE_STATUSES
from local_aws.sagemaker_service.models import ModelStore
from local_aws.sagemaker_service.protocol import Handler
from local_aws.sagemaker_service.transform_jobs import TransformJob, TransformJobStore
from local_aws.sagemaker_service.transform_requests import DEFAULT_CONCURRENCY, DEFAULT_MAX_PAYLOAD_MB


class TransformApi:
    def __init__(
        self,
        store: TransformJobStore,
        models: ModelStore,
        config: LocalAwsConfig,
        engine: Engine,
        on_change: Callable[[], None],
    ) -> None:
        self.store = store
        self.models = models
        self.config = config
        self.engine = engine
        self.on_change = on_change

    def handlers(self) -> dict[str, Handler]:
        return {
            "CreateTransformJob": self.create_transform_job,
            "DescribeTransformJob": self.describe_transform_job,
            "ListTransformJobs": self.list_transform_jobs,
            "StopTransformJob": self.stop_transform_job,
        }

    def create_transform_job(self, params: dict[str, Any]) -> dict[str, Any]:
        existing = self.store.find(params["TransformJobName"])
        if existing is not None:
            raise ResourceInUse(
                "Job name must be unique within an AWS account and region, and a job with this name already"
                f" exists ({existing.arn})"
            )
        model = self.models.get(params["ModelName"])
        try:
            check_object_detection_image(model.image, f"The image of model {model.name}")
            if not model.model_data_url:
                raise ValueError(
                    f"Model {model.name} has no ModelDataUrl: the object-detection algorithm serves the "
                    "model.tar.gz of a training job"
                )
            if self.engine.check is not None:
                load_object(self.engine.check)(params, self.config)
        except ValueError as error:
            raise ValidationError(str(error)) from error
        job = self.store.create(params, model.model_data_url, self.config)
        self.on_change()
        return {"TransformJobArn": job.arn}

    def describe_transform_job(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self.store.get(params["TransformJobName"])
        request = job.request
        return echoed_request("DescribeTransformJob", request) | {
            "TransformJobName": job.name,
            "TransformJobArn": job.arn,
            "TransformJobStatus": job.status,
            "FailureReason": job.failure_reason,
            "MaxConcurrentTransforms": request.get("MaxConcurrentTransforms") or DEFAULT_CONCURRENCY,
            "MaxPayloadInMB": request.get("MaxPayloadInMB", DEFAULT_MAX_PAYLOAD_MB),
            "TransformInput": {"CompressionType": "None", "SplitType": "None", **request["TransformInput"]},
            "CreationTime": job.creation_time,
            "TransformStartTime": job.transform_start_time,
            "TransformEndTime": job.transform_end_time,
        }

    def list_transform_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        page, next_token = list_page(self.store.all(), params, default_order="Descending")
        return {"TransformJobSummaries": [_summary(job) for job in page], "NextToken": next_token}

    def stop_transform_job(self, params: dict[str, Any]) -> None:
        job = self.store.get(params["TransformJobName"])
        if job.status == "Stopping":
            return
        if job.status not in RUNNABLE_STATUSES:
            raise ValidationError(
                f"Transform job {job.name} is {job.status}; only an InProgress job can be stopped."
            )
        self.store.request_stop(job.name)
        self.on_change()


def _summary(job: TransformJob) -> dict[str, Any]:
    return {
        "TransformJobName": job.name,
        "TransformJobArn": job.arn,
        "CreationTime": job.creation_time,
        "TransformEndTime": job.transform_end_time,
        "LastModifiedTime": job.last_modified_time,
        "TransformJobStatus": job.status,
        "FailureReason": job.failure_reason,
    }
