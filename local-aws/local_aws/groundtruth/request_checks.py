"""What a CreateLabelingJob request must be for the local stack to run it, beyond botocore's model.

The stack runs bounding-box jobs for the public crowd (simulated) or for one of its private workteams
(people label in the worker portal), with the built-in PRE-BoundingBox and ACS-BoundingBox Lambdas, reading
and writing S3, optionally with automated data labeling by the built-in object-detection labeling algorithm.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from local_aws.config import LocalAwsConfig
from local_aws.s3_objects import split_s3_uri
from local_aws.sagemaker_service.store import StateDb
from local_aws.workforce.teams import workteam_by_arn

PUBLIC_WORKTEAM_ACCOUNT = "394669845002"
# The account of Ground Truth's labeling algorithms in every region (botocore's SageMaker service model).
LABELING_ALGORITHM_ACCOUNT = "027400017018"
OBJECT_DETECTION_ALGORITHM = "object-detection"
DEFAULT_MAX_CONCURRENT_TASKS = 1000
# AWS's default TaskAvailabilityLifetimeInSeconds for a private workforce: 10 days.
DEFAULT_TASK_AVAILABILITY_LIFETIME_S = 864_000
# The accounts of the built-in Ground Truth Lambdas, per region (botocore's SageMaker service model).
BUILT_IN_LAMBDA_ACCOUNTS = {
    "us-east-1": "432418664414",
    "us-east-2": "266458841044",
    "us-west-2": "081040173940",
    "ca-central-1": "918755190332",
    "eu-west-1": "568282634449",
    "eu-west-2": "487402164563",
    "eu-central-1": "203001061592",
    "ap-northeast-1": "477331159723",
    "ap-northeast-2": "845288260483",
    "ap-south-1": "565803892007",
    "ap-southeast-1": "377565633583",
    "ap-southeast-2": "454466003867",
}
_ALGORITHM_ARN = re.compile(
    r"arn:aws:sagemaker:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12})"
    r":labeling-job-algorithm-specification/(?P<name>[\w-]+)"
)
_LAMBDA_ARN = re.compile(
    r"arn:aws:lambda:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):function:(?P<name>[\w-]+)"
)


def public_workteam_arn(region: str) -> str:
    return f"arn:aws:sagemaker:{region}:{PUBLIC_WORKTEAM_ACCOUNT}:workteam/public-crowd/default"


def built_in_lambda_arn(region: str, function: str) -> str:
    account = BUILT_IN_LAMBDA_ACCOUNTS.get(region, "<account>")
    return f"arn:aws:lambda:{region}:{account}:function:{function}"


def labeling_algorithm_arn(region: str) -> str:
    return (
        f"arn:aws:sagemaker:{region}:{LABELING_ALGORITHM_ACCOUNT}:labeling-job-algorithm-specification/"
        f"{OBJECT_DETECTION_ALGORITHM}"
    )


@dataclass(frozen=True)
class AutoLabelingSpec:
    """What a job with ``LabelingJobAlgorithmsConfig`` needs for automated data labeling."""

    algorithm_arn: str
    role_arn: str  # the job's RoleArn: its training and transform jobs run with it
    resource_config_given: bool  # LabelingJobResourceConfig, which the local stack does not use


@dataclass(frozen=True)
class LabelingJobSpec:
    """The parts of a checked request that the job runs on."""

    label_attribute: str
    manifest_uri: str
    label_categories_uri: str
    template_uri: str
    output_path: str
    workers_per_object: int
    task_time_limit_s: int
    max_concurrent_tasks: int
    auto_labeling: AutoLabelingSpec | None = None
    private_team: PrivateTeamSpec | None = None  # None: the public crowd


@dataclass(frozen=True)
class PrivateTeamSpec:
    """What a job for a private workteam needs beyond every job's spec: who labels and for how long."""

    workteam_arn: str
    title: str
    description: str
    task_availability_lifetime_s: int


def _field(request: dict[str, Any], path: str) -> Any:
    value: Any = request
    for name in path.split("."):
        value = value.get(name) if isinstance(value, dict) else None
    return value


def _require(request: dict[str, Any], path: str, why: str = "") -> Any:
    value = _field(request, path)
    if value is None:
        raise ValueError(f"{path} is required{why}")
    return value


def _check_lambda(arn: Any, field: str, function: str, region: str) -> None:
    """A built-in Lambda ARN of any region whose Ground Truth account is known."""
    expected = built_in_lambda_arn(region, function)
    match = _LAMBDA_ARN.fullmatch(arn) if isinstance(arn, str) else None
    built_in = (
        match is not None
        and match["name"] == function
        and BUILT_IN_LAMBDA_ACCOUNTS.get(match["region"]) == match["account"]
    )
    if not built_in:
        raise ValueError(
            f"{field} {arn!r} is not a built-in {function} Lambda (in {region}: {expected}): the local stack "
            "runs only bounding-box jobs, with the built-in PRE-BoundingBox and ACS-BoundingBox behaviour"
        )


def _s3_uri(request: dict[str, Any], path: str, why: str = "", *, key_required: bool = True) -> str:
    uri = _require(request, path, why)
    try:
        split_s3_uri(uri, key_required=key_required)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return uri


def _auto_labeling(request: dict[str, Any], region: str) -> AutoLabelingSpec | None:
    """The automated data labeling a request asks for: the object-detection algorithm of any region."""
    algorithms = request.get("LabelingJobAlgorithmsConfig")
    if algorithms is None:
        return None
    field = "LabelingJobAlgorithmsConfig.LabelingJobAlgorithmSpecificationArn"
    arn = _require(request, field)
    match = _ALGORITHM_ARN.fullmatch(arn) if isinstance(arn, str) else None
    if match is None or match["account"] != LABELING_ALGORITHM_ACCOUNT:
        raise ValueError(
            f"{field} {arn!r} is not a Ground Truth labeling algorithm ARN (in {region}: "
            f"{labeling_algorithm_arn(region)})"
        )
    if match["name"] != OBJECT_DETECTION_ALGORITHM:
        raise ValueError(
            f"{field} {arn!r} names the {match['name']} labeling algorithm; a bounding-box job is labeled "
            f"automatically by the {OBJECT_DETECTION_ALGORITHM} one, {labeling_algorithm_arn(region)}"
        )
    if algorithms.get("InitialActiveLearningModelArn") is not None:
        raise ValueError(
            "LabelingJobAlgorithmsConfig.InitialActiveLearningModelArn is not supported by the local stack: "
            "its object-detection training cannot start from an earlier model, so every automated labeling "
            "job trains its detectors from the job's own human labels; leave it out"
        )
    return AutoLabelingSpec(
        algorithm_arn=arn,
        role_arn=_require(request, "RoleArn", " for automated data labeling"),
        resource_config_given=algorithms.get("LabelingJobResourceConfig") is not None,
    )


def _private_team(request: dict[str, Any], workteam: str, config: LocalAwsConfig) -> PrivateTeamSpec:
    """A job for one of the stack's private workteams; ValueError for a workteam it does not have."""
    if workteam_by_arn(StateDb(config.state_db), workteam) is None:
        raise ValueError(
            f"HumanTaskConfig.WorkteamArn: unknown workteam {workteam!r}; the local stack has the public "
            f"workforce of {config.region}, {public_workteam_arn(config.region)} (a simulated crowd), and "
            "the private workteams made with CreateWorkteam (see ListWorkteams)"
        )
    lifetime = _field(request, "HumanTaskConfig.TaskAvailabilityLifetimeInSeconds")
    return PrivateTeamSpec(
        workteam_arn=workteam,
        title=str(_field(request, "HumanTaskConfig.TaskTitle") or request["LabelingJobName"]),
        description=str(_field(request, "HumanTaskConfig.TaskDescription") or ""),
        task_availability_lifetime_s=int(lifetime or DEFAULT_TASK_AVAILABILITY_LIFETIME_S),
    )


def labeling_job_spec(request: dict[str, Any], config: LocalAwsConfig) -> LabelingJobSpec:
    """Check ``request`` and return what the job needs of it; ValueError names what the stack cannot serve."""
    auto_labeling = _auto_labeling(request, config.region)
    if _field(request, "InputConfig.DataSource.S3DataSource") is None:
        raise ValueError(
            "InputConfig.DataSource.S3DataSource.ManifestS3Uri is required: the local stack reads input "
            "manifests from S3 (streaming jobs with an SnsDataSource are not supported)"
        )
    region = config.region
    workteam = _require(request, "HumanTaskConfig.WorkteamArn")
    private_team = None
    if workteam != public_workteam_arn(region):
        private_team = _private_team(request, workteam, config)
    _check_lambda(
        _field(request, "HumanTaskConfig.PreHumanTaskLambdaArn"),
        "HumanTaskConfig.PreHumanTaskLambdaArn",
        "PRE-BoundingBox",
        region,
    )
    _check_lambda(
        _field(request, "HumanTaskConfig.AnnotationConsolidationConfig.AnnotationConsolidationLambdaArn"),
        "HumanTaskConfig.AnnotationConsolidationConfig.AnnotationConsolidationLambdaArn",
        "ACS-BoundingBox",
        region,
    )
    return LabelingJobSpec(
        label_attribute=_require(request, "LabelAttributeName"),
        manifest_uri=_s3_uri(request, "InputConfig.DataSource.S3DataSource.ManifestS3Uri"),
        label_categories_uri=_s3_uri(
            request, "LabelCategoryConfigS3Uri", " for a bounding-box job: it lists the labels workers draw"
        ),
        template_uri=_s3_uri(
            request,
            "HumanTaskConfig.UiConfig.UiTemplateS3Uri",
            " (the local stack renders a Liquid worker UI template; HumanTaskUiArn is not supported)",
        ),
        output_path=_s3_uri(request, "OutputConfig.S3OutputPath", key_required=False),
        workers_per_object=int(_require(request, "HumanTaskConfig.NumberOfHumanWorkersPerDataObject")),
        task_time_limit_s=int(_require(request, "HumanTaskConfig.TaskTimeLimitInSeconds")),
        max_concurrent_tasks=int(
            _field(request, "HumanTaskConfig.MaxConcurrentTaskCount") or DEFAULT_MAX_CONCURRENT_TASKS
        ),
        auto_labeling=auto_labeling,
        private_team=private_team,
    )


def check_labeling_job_request(request: dict[str, Any], config: LocalAwsConfig) -> None:
    """Raise ValueError, with a message naming the field, for a request the local stack cannot serve."""
    labeling_job_spec(request, config)
