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
from local_aws.sagemaker_service.job_api import JobApi, echoed_request
from local_aws.sagemaker_service.job_runner import Engine
from local_aws.sagemaker_service.models import ModelStore
from local_aws.sagemaker_service.transform_jobs import TransformJob, TransformJobStore
from local_aws.sagemaker_service.transform_requests import DEFAULT_CONCURRENCY, DEFAULT_MAX_PAYLOAD_MB


class TransformApi(JobApi[TransformJob]):
    store: TransformJobStore
    kind = "Transform"
    summaries_key = "TransformJobSummaries"
    default_order = "Descending"

    def __init__(
        self,
        store: TransformJobStore,
        models: ModelStore,
        config: LocalAwsConfig,
        engine: Engine,
        on_change: Callable[[], None],
    ) -> None:
        super().__init__(store, config, engine, on_change)
        self.models = models

    def check(self, params: dict[str, Any]) -> None:
        model = self.models.get(params["ModelName"])
        check_object_detection_image(model.image, f"The image of model {model.name}")
        if not model.model_data_url:
            raise ValueError(
                f"Model {model.name} has no ModelDataUrl: the object-detection algorithm serves the "
                "model.tar.gz of a training job"
            )

    def create(self, params: dict[str, Any]) -> TransformJob:
        model_data_url = self.models.get(params["ModelName"]).model_data_url
        return self.store.create(params, model_data_url, self.config)

    def describe_job(self, params: dict[str, Any]) -> dict[str, Any]:
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

    def summary(self, job: TransformJob) -> dict[str, Any]:
        return {
            "TransformEndTime": job.transform_end_time,
            "FailureReason": job.failure_reason,
        }
