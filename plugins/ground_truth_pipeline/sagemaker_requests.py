"""Request dicts for every SageMaker call the pipeline makes, exactly as boto3 takes them.

The builders are pure: they check their arguments, assemble the request and check it against botocore's own
SageMaker service model before returning it (``validate_request``), so a malformed request fails in the task
that builds it, with a message that names the field, instead of as a ``ValidationException`` from AWS.

botocore's parameter validator checks required fields, types and minimum sizes, but not maximum lengths,
patterns or enums; where a caller can plausibly get one of those wrong (titles, keywords, the label
attribute, a workteam ARN, price), the builders check it against the same service model. Hyperparameters
are checked against the documented valid values of the built-in object-detection algorithm, extended only by
what the configuration says a training service accepts beyond them (``ExtraBaseNetworks``).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import MappingProxyType

import botocore.session
from botocore.model import OperationNotFoundError, ServiceModel
from botocore.validate import ParamValidator

from ground_truth_pipeline.configuration import CONFIG_SECTION, env_variable
from ground_truth_pipeline.region_arns import (
    auto_labeling_algorithm_arn,
    consolidation_lambda_arn,
    object_detection_image_uri,
    pre_human_task_lambda_arn,
    public_workteam_arn,
)

MAX_LABEL_CATEGORIES = 10
DEFAULT_TASK_KEYWORDS = ("image", "bounding box", "object detection")
DEFAULT_CONTENT_CLASSIFIERS = ("FreeOfPersonallyIdentifiableInformation", "FreeOfAdultContent")
# The prices AWS allows for a bounding-box task on the public workforce (API reference of
# PublicWorkforceTaskPrice), in US dollars per image and worker.
_BOUNDING_BOX_PRICES = (
    "0.036",
    "0.048",
    "0.060",
    "0.072",
    "0.120",
    "0.240",
    "0.360",
    "0.480",
    "0.600",
    "0.720",
    "0.840",
    "0.960",
    "1.080",
    "1.200",
)
BOUNDING_BOX_TASK_PRICES_USD = tuple(Decimal(price) for price in _BOUNDING_BOX_PRICES)
INFERENCE_CONTENT_TYPES = ("image/jpeg", "image/png", "application/x-image")


class InvalidRequestError(ValueError):
    """A request does not fit botocore's SageMaker service model."""


@functools.cache
def sagemaker_service_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("sagemaker")


def validate_request(operation_name: str, request: Mapping[str, object]) -> None:
    """Check ``request`` against the input shape of a SageMaker operation, e.g. ``"CreateTrainingJob"``.

    Raises ``InvalidRequestError`` with botocore's report, which names each missing or mistyped field.
    """
    try:
        operation = sagemaker_service_model().operation_model(operation_name)
    except OperationNotFoundError:
        raise InvalidRequestError(f"SageMaker has no operation {operation_name!r}") from None
    report = ParamValidator().validate(request, operation.input_shape)
    if report.has_errors():
        raise InvalidRequestError(f"Invalid {operation_name} request:\n{report.generate_report()}")


def _check_model_string(shape_name: str, value: str, argument: str) -> None:
    """Check ``value`` against the length limits and pattern the service model gives ``shape_name``."""
    metadata = sagemaker_service_model().shape_for(shape_name).metadata
    low, high = metadata.get("min", 0), metadata.get("max", math.inf)
    if not isinstance(value, str) or not low <= len(value) <= high:
        raise ValueError(f"{argument} must be a string of {low} to {high} characters, got {value!r}")
    pattern = metadata.get("pattern")
    if pattern and not re.fullmatch(pattern, value):
        raise ValueError(f"{argument} {value!r} does not match SageMaker's pattern {pattern}")


def _require_s3_uri(argument: str, value: str) -> None:
    if not isinstance(value, str) or not re.match(r"^s3://[^/]+/", value):
        raise ValueError(f"{argument} must be an s3://bucket/key URI, got {value!r}")


def _require_int(argument: str, value: int, low: int, high: float = math.inf) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        bounds = f"at least {low}" if high == math.inf else f"from {low} to {high}"
        raise ValueError(f"{argument} must be an integer {bounds}, got {value!r}")


# Labeling job.


def usd_amount(price_usd: float | Decimal | str) -> dict[str, int]:
    """A price in US dollars as SageMaker's ``USD`` structure, exactly: 0.036 -> 0 dollars, 3 cents, 6 tenths.

    The price must be positive and a whole number of tenths of a cent. Floats are read through their
    shortest representation (``str(0.036) == "0.036"``), so no binary rounding error leaks in.
    """
    not_a_number = ValueError(f"task price {price_usd!r} is not a number of US dollars")
    if isinstance(price_usd, bool) or not isinstance(price_usd, float | int | Decimal | str):
        raise not_a_number
    try:
        amount = Decimal(str(price_usd))
    except InvalidOperation:
        raise not_a_number from None
    if not amount.is_finite() or amount <= 0:
        raise ValueError(f"task price must be a positive number of US dollars, got {price_usd!r}")
    tenths_of_cents = amount * 1000
    if tenths_of_cents != tenths_of_cents.to_integral_value():
        raise ValueError(
            f"task price {price_usd} USD is finer than SageMaker allows: it must be a whole number of "
            "tenths of a cent (0.001 USD)"
        )
    dollars, rest = divmod(int(tenths_of_cents), 1000)
    max_dollars = sagemaker_service_model().shape_for("USD").members["Dollars"].metadata["max"]
    if dollars > max_dollars:
        raise ValueError(f"task price {price_usd} USD is above SageMaker's limit of {max_dollars}.999 USD")
    return {"Dollars": dollars, "Cents": rest // 10, "TenthFractionsOfACent": rest % 10}


@dataclass(frozen=True)
class PublicCrowd:
    """Amazon Mechanical Turk workers, paid ``task_price_usd`` per image and worker."""

    task_price_usd: float | Decimal | str

    def __post_init__(self) -> None:
        usd_amount(self.task_price_usd)
        if Decimal(str(self.task_price_usd)) not in BOUNDING_BOX_TASK_PRICES_USD:
            allowed = ", ".join(str(p) for p in BOUNDING_BOX_TASK_PRICES_USD)
            raise ValueError(
                f"task price {self.task_price_usd} USD is not one AWS allows for bounding-box tasks on the "
                f"public workforce; choose one of {allowed}"
            )

    def amount_in_usd(self) -> dict[str, int]:
        return usd_amount(self.task_price_usd)


@dataclass(frozen=True)
class PrivateTeam:
    """A private (or vendor) workteam, given by its ARN; its workers are not paid per task."""

    workteam_arn: str

    def __post_init__(self) -> None:
        _check_model_string("WorkteamArn", self.workteam_arn, "private workteam ARN")
        if ":workteam/public-crowd/" in self.workteam_arn:
            raise ValueError(
                f"{self.workteam_arn} is the public workforce; use PublicCrowd(task_price_usd=...) for it"
            )


Workforce = PublicCrowd | PrivateTeam


def label_categories(class_names: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    """The label category file of a bounding-box job; ``class_id`` in the output indexes this list."""
    if isinstance(class_names, str):
        raise ValueError(f"class_names must be a list of names, not the string {class_names!r}")
    names = list(class_names)
    if not 1 <= len(names) <= MAX_LABEL_CATEGORIES:
        raise ValueError(
            f"a bounding-box job takes 1 to {MAX_LABEL_CATEGORIES} label categories, "
            f"got {len(names)}: {names!r}"
        )
    for index, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"label category {index} must be a non-empty name, got {name!r}")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"label categories must be unique; repeated: {', '.join(duplicates)}")
    return {"labels": [{"label": name} for name in names]}


def _check_label_attribute_name(name: str) -> None:
    _check_model_string("LabelAttributeName", name, "label_attribute_name")
    # SageMaker reserves these suffixes: "-metadata" for every job, "-ref" for task types other than boxes.
    for suffix in ("-metadata", "-ref"):
        if name.endswith(suffix):
            raise ValueError(
                f"label_attribute_name {name!r} must not end with {suffix!r} for a bounding-box job"
            )


def labeling_job_request(
    *,
    job_name: str,
    class_name: str,
    manifest_uri: str,
    output_uri: str,
    role_arn: str,
    label_categories_uri: str,
    template_uri: str,
    region: str,
    workforce: Workforce,
    auto_labeling: bool,
    label_attribute_name: str = "category",
    workers_per_object: int = 5,
    task_time_limit_s: int = 300,
    task_availability_s: int = 21600,
    max_concurrent_tasks: int = 200,
    task_title: str | None = None,
    task_description: str | None = None,
    task_keywords: Sequence[str] = DEFAULT_TASK_KEYWORDS,
    content_classifiers: Sequence[str] = DEFAULT_CONTENT_CLASSIFIERS,
) -> dict:
    """CreateLabelingJob for a bounding-box job with the built-in pre-annotation and consolidation Lambdas.

    ``class_name`` only words the default task title and description. With ``auto_labeling`` the job uses
    the built-in object-detection labeling algorithm (automated data labeling).
    """
    for argument, uri in (
        ("manifest_uri", manifest_uri),
        ("output_uri", output_uri),
        ("label_categories_uri", label_categories_uri),
        ("template_uri", template_uri),
    ):
        _require_s3_uri(argument, uri)
    _check_label_attribute_name(label_attribute_name)
    _require_int("workers_per_object", workers_per_object, 1, 9)
    _require_int("max_concurrent_tasks", max_concurrent_tasks, 1, 5000)
    title = task_title if task_title is not None else f"Draw a box around each {class_name}"
    description = (
        task_description
        if task_description is not None
        else f"Draw a tight bounding box around every {class_name} you can see in the image."
    )
    _check_model_string("TaskTitle", title, "task_title")
    _check_model_string("TaskDescription", description, "task_description")
    keywords = [task_keywords] if isinstance(task_keywords, str) else list(task_keywords)
    if not 1 <= len(keywords) <= 5:
        raise ValueError(f"task_keywords must hold 1 to 5 keywords, got {keywords!r}")
    for keyword in keywords:
        _check_model_string("TaskKeyword", keyword, "task keyword")
    allowed_classifiers = sagemaker_service_model().shape_for("ContentClassifiers").member.enum
    unknown = [c for c in content_classifiers if c not in allowed_classifiers]
    if unknown:
        raise ValueError(
            f"unknown content classifiers {unknown!r}; SageMaker knows {', '.join(allowed_classifiers)}"
        )

    human_task_config: dict = {
        "WorkteamArn": (
            workforce.workteam_arn if isinstance(workforce, PrivateTeam) else public_workteam_arn(region)
        ),
        "UiConfig": {"UiTemplateS3Uri": template_uri},
        "PreHumanTaskLambdaArn": pre_human_task_lambda_arn(region),
        "TaskKeywords": keywords,
        "TaskTitle": title,
        "TaskDescription": description,
        "NumberOfHumanWorkersPerDataObject": workers_per_object,
        "TaskTimeLimitInSeconds": task_time_limit_s,
        "TaskAvailabilityLifetimeInSeconds": task_availability_s,
        "MaxConcurrentTaskCount": max_concurrent_tasks,
        "AnnotationConsolidationConfig": {
            "AnnotationConsolidationLambdaArn": consolidation_lambda_arn(region)
        },
    }
    if isinstance(workforce, PublicCrowd):
        human_task_config["PublicWorkforceTaskPrice"] = {"AmountInUsd": workforce.amount_in_usd()}
    request: dict = {
        "LabelingJobName": job_name,
        "LabelAttributeName": label_attribute_name,
        "InputConfig": {
            "DataSource": {"S3DataSource": {"ManifestS3Uri": manifest_uri}},
            "DataAttributes": {"ContentClassifiers": list(content_classifiers)},
        },
        "OutputConfig": {"S3OutputPath": output_uri},
        "RoleArn": role_arn,
        "LabelCategoryConfigS3Uri": label_categories_uri,
        "HumanTaskConfig": human_task_config,
    }
    if auto_labeling:
        request["LabelingJobAlgorithmsConfig"] = {
            "LabelingJobAlgorithmSpecificationArn": auto_labeling_algorithm_arn(region)
        }
    validate_request("CreateLabelingJob", request)
    return request


# Training job: hyperparameters of the built-in object-detection algorithm.


@dataclass(frozen=True)
class _ValidValues:
    accepts: Callable[[str], bool]
    description: str


def _integer_at_least(minimum: int) -> _ValidValues:
    return _ValidValues(
        lambda v: re.fullmatch(r"[+-]?\d+", v) is not None and int(v) >= minimum,
        "a positive integer" if minimum == 1 else f"an integer >= {minimum}",
    )


def _float_between(low: float, high: float, *, low_open: bool, high_open: bool) -> _ValidValues:
    def accepts(value: str) -> bool:
        try:
            number = float(value)
        except ValueError:
            return False
        above = number > low if low_open else number >= low
        below = number < high if high_open else number <= high
        return math.isfinite(number) and above and below

    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    return _ValidValues(accepts, f"a number in {interval}")


def _one_of(*choices: str) -> _ValidValues:
    return _ValidValues(lambda v: v in choices, f"one of {', '.join(choices)}")


def _epoch_list(value: str) -> bool:
    parts = [part.strip() for part in value.split(",")]
    return all(re.fullmatch(r"\d+", part) and int(part) > 0 for part in parts)


def _regex(value: str) -> bool:
    try:
        re.compile(value)
    except re.error:
        return False
    return True


AWS_BASE_NETWORKS = ("vgg-16", "resnet-50")
AWS_DEFAULT_BASE_NETWORK = "vgg-16"  # what the algorithm trains when a job leaves base_network out
AWS_MIN_IMAGE_SHAPE = 300

# Valid values as the SageMaker developer guide documents them ("Object Detection Hyperparameters").
OBJECT_DETECTION_HYPERPARAMETERS: Mapping[str, _ValidValues] = MappingProxyType(
    {
        "num_classes": _integer_at_least(1),
        "num_training_samples": _integer_at_least(1),
        "base_network": _one_of(*AWS_BASE_NETWORKS),
        "early_stopping": _one_of("True", "False"),
        "early_stopping_min_epochs": _integer_at_least(1),
        "early_stopping_patience": _integer_at_least(1),
        "early_stopping_tolerance": _float_between(0, 1, low_open=False, high_open=False),
        "image_shape": _integer_at_least(AWS_MIN_IMAGE_SHAPE),
        "epochs": _integer_at_least(1),
        "freeze_layer_pattern": _ValidValues(_regex, "a regular expression"),
        "kv_store": _one_of("dist_sync", "dist_async"),
        "label_width": _integer_at_least(1),
        "learning_rate": _float_between(0, 1, low_open=True, high_open=False),
        "lr_scheduler_factor": _float_between(0, 1, low_open=True, high_open=True),
        "lr_scheduler_step": _ValidValues(_epoch_list, 'comma-separated positive epochs such as "10,20"'),
        "mini_batch_size": _integer_at_least(1),
        "momentum": _float_between(0, 1, low_open=True, high_open=False),
        "nms_threshold": _float_between(0, 1, low_open=True, high_open=False),
        "optimizer": _one_of("sgd", "adam", "rmsprop", "adadelta"),
        "overlap_threshold": _float_between(0, 1, low_open=True, high_open=False),
        "use_pretrained_model": _one_of("0", "1"),
        "weight_decay": _float_between(0, 1, low_open=True, high_open=True),
    }
)

# Options of the DAG's configuration section that extend AWS's rules for a training service that accepts more.
EXTRA_BASE_NETWORKS_OPTION = "extra_base_networks"
EXTRA_BASE_NETWORKS_MIN_IMAGE_SHAPE_OPTION = "extra_base_networks_min_image_shape"


def _option(name: str) -> str:
    return f"[{CONFIG_SECTION}] {name} ({env_variable(name)})"


@dataclass(frozen=True)
class ExtraBaseNetworks:
    """The ``base_network`` values a training service accepts beyond AWS's, and the smallest ``image_shape``
    it accepts for them.

    AWS's algorithm has none; a service that implements the algorithm with more networks says which in the
    options ``extra_base_networks`` (comma-separated) and ``extra_base_networks_min_image_shape`` (default:
    AWS's 300). AWS's own networks keep AWS's rules whatever is configured.
    """

    names: tuple[str, ...] = ()
    min_image_shape: int = AWS_MIN_IMAGE_SHAPE

    def __post_init__(self) -> None:
        option = _option(EXTRA_BASE_NETWORKS_OPTION)
        if isinstance(self.names, str):
            raise ValueError(f"{option} must be a sequence of network names, not the string {self.names!r}")
        object.__setattr__(self, "names", tuple(self.names))
        for name in self.names:
            if not isinstance(name, str) or not re.fullmatch(r"[^\s,]+", name):
                raise ValueError(f"{option} names {name!r}, which is not a network name")
            if name in AWS_BASE_NETWORKS:
                raise ValueError(
                    f"{option} names {name}, one of AWS's networks ({', '.join(AWS_BASE_NETWORKS)}), "
                    "which keep AWS's rules; list only the networks a training service accepts beyond them"
                )
        _require_int(_option(EXTRA_BASE_NETWORKS_MIN_IMAGE_SHAPE_OPTION), self.min_image_shape, 1)

    @classmethod
    def from_options(cls, names: str, min_image_shape: str) -> ExtraBaseNetworks:
        """The extension as the configuration gives it: ``"net-a, net-b"`` and ``"64"``."""
        shape = min_image_shape.strip()
        if not re.fullmatch(r"\+?\d+", shape):
            raise ValueError(
                f"{_option(EXTRA_BASE_NETWORKS_MIN_IMAGE_SHAPE_OPTION)} must be a positive integer, "
                f"got {min_image_shape!r}"
            )
        return cls(tuple(name.strip() for name in names.split(",") if name.strip()), int(shape))

    @property
    def image_shape(self) -> _ValidValues:
        return _integer_at_least(self.min_image_shape)


# The reference notebook's choices; the algorithm's own defaults apply to everything not listed.
DEFAULT_HYPERPARAMETERS: Mapping[str, str] = MappingProxyType(
    {
        "base_network": "resnet-50",
        "use_pretrained_model": "1",
        "mini_batch_size": "1",
        "epochs": "30",
        "learning_rate": "0.001",
        "lr_scheduler_factor": "0.1",
        "optimizer": "sgd",
        "momentum": "0.9",
        "weight_decay": "0.0005",
        "overlap_threshold": "0.5",
        "nms_threshold": "0.45",
        "image_shape": "300",
        "label_width": "350",
    }
)


def _render_hyperparameter(name: str, value: object) -> str | None:
    """The string SageMaker gets; ``None`` for an empty value, which is left out of the request."""
    if value is None:
        return None
    if isinstance(value, str | int | float | Decimal):
        rendered = str(value)
        return rendered if rendered.strip() else None
    raise ValueError(
        f"hyperparameter {name} must be a string or a number, got {type(value).__name__} {value!r}"
    )


def object_detection_hyperparameters(
    *,
    num_training_samples: int,
    num_classes: int,
    overrides: Mapping[str, object] | None = None,
    extra_base_networks: ExtraBaseNetworks | None = None,
) -> dict[str, str]:
    """The notebook's defaults, then ``overrides``, as strings; empty values (``""``, ``None``) are omitted.

    ``num_classes`` and ``num_training_samples`` always come from the arguments; an override may repeat them
    but not contradict them. Every value is checked against the algorithm's documented valid values, except
    that ``extra_base_networks`` admits more ``base_network`` values, with their own smallest ``image_shape``.
    """
    _require_int("num_training_samples", num_training_samples, 1)
    _require_int("num_classes", num_classes, 1)
    overrides = overrides or {}
    unknown = sorted(set(overrides) - set(OBJECT_DETECTION_HYPERPARAMETERS))
    if unknown:
        raise ValueError(
            f"unknown object-detection hyperparameters {', '.join(unknown)}; "
            f"the algorithm takes {', '.join(OBJECT_DETECTION_HYPERPARAMETERS)}"
        )
    merged: dict[str, str] = {}
    for name, value in {**DEFAULT_HYPERPARAMETERS, **overrides}.items():
        rendered = _render_hyperparameter(name, value)
        if rendered is not None:
            merged[name] = rendered
    for name, value in (("num_classes", num_classes), ("num_training_samples", num_training_samples)):
        if name in merged and merged[name] != str(value):
            raise ValueError(
                f"hyperparameter {name}={merged[name]!r} contradicts {name}={value}; leave it out, "
                "it is set from the argument"
            )
        merged[name] = str(value)
    extra = extra_base_networks or ExtraBaseNetworks()
    for name, rendered in merged.items():
        _check_hyperparameter(name, rendered, merged.get("base_network", AWS_DEFAULT_BASE_NETWORK), extra)
    return merged


def _check_hyperparameter(name: str, rendered: str, base_network: str, extra: ExtraBaseNetworks) -> None:
    """AWS's documented rule for ``name``, or the configured extension's for its networks."""
    invalid = f"hyperparameter {name}={rendered!r} is invalid"
    if name == "base_network" and rendered in extra.names:
        return
    if name == "base_network" and rendered not in AWS_BASE_NETWORKS:
        aws = ", ".join(AWS_BASE_NETWORKS)
        if extra.names:
            raise ValueError(
                f"{invalid}: it must be one of AWS's networks, {aws}, or of the extra networks of "
                f"{_option(EXTRA_BASE_NETWORKS_OPTION)}, {', '.join(extra.names)}"
            )
        raise ValueError(
            f"{invalid}: it must be one of AWS's networks, {aws}; a training service that accepts others is "
            f"configured with them in {_option(EXTRA_BASE_NETWORKS_OPTION)}"
        )
    if name == "image_shape" and base_network in extra.names:
        if not extra.image_shape.accepts(rendered):
            raise ValueError(
                f"{invalid} for base_network={base_network}: it must be {extra.image_shape.description} "
                f"({_option(EXTRA_BASE_NETWORKS_MIN_IMAGE_SHAPE_OPTION)})"
            )
        return
    valid = OBJECT_DETECTION_HYPERPARAMETERS[name]
    if valid.accepts(rendered):
        return
    if name == "image_shape" and extra.names and extra.image_shape.accepts(rendered):
        raise ValueError(
            f"{invalid} for base_network={base_network}: it must be {valid.description}, as on AWS; smaller "
            f"shapes, from {extra.min_image_shape}, are for the extra networks {', '.join(extra.names)} only"
        )
    raise ValueError(f"{invalid}: it must be {valid.description}")


def _check_attribute_names(attribute_names: Sequence[str]) -> list[str]:
    names = [attribute_names] if isinstance(attribute_names, str) else list(attribute_names)
    if len(names) != 2 or names[0] != "source-ref":
        raise ValueError(
            "attribute_names must be ['source-ref', <label attribute name>] in that order, since the "
            f"algorithm reads the image first and its boxes second; got {names!r}"
        )
    label = names[1]
    if not isinstance(label, str) or not label or label == "source-ref" or label.endswith("-metadata"):
        raise ValueError(f"attribute_names[1] must be the label attribute of the manifest, got {label!r}")
    return names


def _augmented_manifest_channel(channel_name: str, manifest_uri: str, attribute_names: list[str]) -> dict:
    return {
        "ChannelName": channel_name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "AugmentedManifestFile",
                "S3Uri": manifest_uri,
                "S3DataDistributionType": "FullyReplicated",
                "AttributeNames": list(attribute_names),
            }
        },
        "ContentType": "application/x-recordio",
        "RecordWrapperType": "RecordIO",
        "CompressionType": "None",
    }


def training_job_request(
    *,
    job_name: str,
    role_arn: str,
    train_manifest_uri: str,
    validation_manifest_uri: str,
    attribute_names: Sequence[str],
    output_uri: str,
    num_training_samples: int,
    num_classes: int,
    region: str | None = None,
    image_uri: str | None = None,
    hyperparameters: Mapping[str, object] | None = None,
    instance_type: str = "ml.p3.2xlarge",
    instance_count: int = 1,
    volume_gb: int = 50,
    max_runtime_s: int = 86400,
    extra_base_networks: ExtraBaseNetworks | None = None,
) -> dict:
    """CreateTrainingJob for the built-in object-detection algorithm on augmented manifests, in Pipe mode.

    Give ``region`` to train with AWS's image of the algorithm there, or ``image_uri`` for another image;
    ``extra_base_networks`` admits the networks a training service accepts beyond AWS's.
    """
    if (region is None) == (image_uri is None):
        raise ValueError("give exactly one of region (for AWS's object-detection image) or image_uri")
    training_image = image_uri if image_uri is not None else object_detection_image_uri(region)
    for argument, uri in (
        ("train_manifest_uri", train_manifest_uri),
        ("validation_manifest_uri", validation_manifest_uri),
        ("output_uri", output_uri),
    ):
        _require_s3_uri(argument, uri)
    names = _check_attribute_names(attribute_names)
    request = {
        "TrainingJobName": job_name,
        "AlgorithmSpecification": {"TrainingImage": training_image, "TrainingInputMode": "Pipe"},
        "RoleArn": role_arn,
        "HyperParameters": object_detection_hyperparameters(
            num_training_samples=num_training_samples,
            num_classes=num_classes,
            overrides=hyperparameters,
            extra_base_networks=extra_base_networks,
        ),
        "InputDataConfig": [
            _augmented_manifest_channel("train", train_manifest_uri, names),
            _augmented_manifest_channel("validation", validation_manifest_uri, names),
        ],
        "OutputDataConfig": {"S3OutputPath": output_uri},
        "ResourceConfig": {
            "InstanceType": instance_type,
            "InstanceCount": instance_count,
            "VolumeSizeInGB": volume_gb,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_s},
    }
    validate_request("CreateTrainingJob", request)
    return request


# Model, batch transform and endpoint.


def model_request(*, model_name: str, image_uri: str, model_data_url: str, role_arn: str) -> dict:
    _require_s3_uri("model_data_url", model_data_url)
    request = {
        "ModelName": model_name,
        "ExecutionRoleArn": role_arn,
        "PrimaryContainer": {"Image": image_uri, "ModelDataUrl": model_data_url},
    }
    validate_request("CreateModel", request)
    return request


def transform_job_request(
    *,
    job_name: str,
    model_name: str,
    input_prefix_uri: str,
    output_uri: str,
    instance_type: str = "ml.p2.xlarge",
    instance_count: int = 1,
    max_concurrent: int = 16,
    max_payload_mb: int = 6,
    content_type: str = "application/x-image",
) -> dict:
    """CreateTransformJob sending each image under ``input_prefix_uri`` whole, as one request."""
    _require_s3_uri("input_prefix_uri", input_prefix_uri)
    _require_s3_uri("output_uri", output_uri)
    if content_type not in INFERENCE_CONTENT_TYPES:
        raise ValueError(
            f"content_type {content_type!r} is not one the object-detection algorithm reads: "
            f"{', '.join(INFERENCE_CONTENT_TYPES)}"
        )
    request = {
        "TransformJobName": job_name,
        "ModelName": model_name,
        "MaxConcurrentTransforms": max_concurrent,
        "MaxPayloadInMB": max_payload_mb,
        "BatchStrategy": "SingleRecord",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_prefix_uri}},
            "ContentType": content_type,
            "SplitType": "None",
            "CompressionType": "None",
        },
        "TransformOutput": {"S3OutputPath": output_uri},
        "TransformResources": {"InstanceType": instance_type, "InstanceCount": instance_count},
    }
    validate_request("CreateTransformJob", request)
    return request


def endpoint_config_request(
    *,
    config_name: str,
    model_name: str,
    instance_type: str = "ml.m4.xlarge",
    instance_count: int = 1,
    variant: str = "AllTraffic",
) -> dict:
    request = {
        "EndpointConfigName": config_name,
        "ProductionVariants": [
            {
                "VariantName": variant,
                "ModelName": model_name,
                "InstanceType": instance_type,
                "InitialInstanceCount": instance_count,
            }
        ],
    }
    validate_request("CreateEndpointConfig", request)
    return request


def endpoint_request(*, endpoint_name: str, config_name: str) -> dict:
    request = {"EndpointName": endpoint_name, "EndpointConfigName": config_name}
    validate_request("CreateEndpoint", request)
    return request


def endpoint_operator_config(
    *,
    endpoint_name: str,
    config_name: str,
    model_name: str,
    instance_type: str = "ml.m4.xlarge",
    instance_count: int = 1,
    variant: str = "AllTraffic",
) -> dict:
    """The ``config`` of the Amazon provider's ``SageMakerEndpointOperator``: it creates the endpoint
    config, then the endpoint, for a model that already exists."""
    return {
        "EndpointConfig": endpoint_config_request(
            config_name=config_name,
            model_name=model_name,
            instance_type=instance_type,
            instance_count=instance_count,
            variant=variant,
        ),
        "Endpoint": endpoint_request(endpoint_name=endpoint_name, config_name=config_name),
    }
