"""CreateLabelingJob requests with automated labeling for the stack's tests: bird boxes, public crowd."""

from __future__ import annotations

from typing import Any

from local_aws.groundtruth.request_checks import labeling_algorithm_arn

REGION = "us-east-1"
ACS_LAMBDA = f"arn:aws:lambda:{REGION}:432418664414:function:ACS-BoundingBox"
ROLE_ARN = "arn:aws:iam::123456789012:role/GroundTruth"


def auto_labeling_request(
    name: str, bucket: str, manifest: str, *, workers: int, max_concurrent: int, **algorithms: Any
) -> dict[str, Any]:
    """A job over ``s3://<bucket>/<manifest>`` with the bucket's ``class_labels.json`` and
    ``instructions.template``, writing under ``output/``; ``algorithms`` join LabelingJobAlgorithmsConfig."""
    uri = f"s3://{bucket}/"
    return {
        "LabelingJobName": name,
        "LabelAttributeName": "category",
        "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": uri + manifest}}},
        "OutputConfig": {"S3OutputPath": uri + "output/"},
        "RoleArn": ROLE_ARN,
        "LabelCategoryConfigS3Uri": uri + "class_labels.json",
        "LabelingJobAlgorithmsConfig": {
            "LabelingJobAlgorithmSpecificationArn": labeling_algorithm_arn(REGION),
            **algorithms,
        },
        "HumanTaskConfig": {
            "WorkteamArn": f"arn:aws:sagemaker:{REGION}:394669845002:workteam/public-crowd/default",
            "UiConfig": {"UiTemplateS3Uri": uri + "instructions.template"},
            "PreHumanTaskLambdaArn": f"arn:aws:lambda:{REGION}:432418664414:function:PRE-BoundingBox",
            "TaskKeywords": ["Images"],
            "TaskTitle": "Bird boxes",
            "TaskDescription": "Draw a box around each bird",
            "NumberOfHumanWorkersPerDataObject": workers,
            "TaskTimeLimitInSeconds": 300,
            "MaxConcurrentTaskCount": max_concurrent,
            "AnnotationConsolidationConfig": {"AnnotationConsolidationLambdaArn": ACS_LAMBDA},
        },
    }
