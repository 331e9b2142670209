"""SageMaker hosting operations: models, endpoint configs and endpoints.

CreateModel accepts what the stack can serve: one container running the built-in object-detection
algorithm's image (of any region) on a ``model.tar.gz`` in S3. CreateEndpoint and UpdateEndpoint only record
what to deploy; the endpoint manager brings it into service (Creating → InService, or Failed with a reason)
and DeleteEndpoint leaves the endpoint Deleting until its processes are stopped. Errors are worded as
SageMaker words them: a missing or existing resource is a ValidationException naming its ARN.

Deployments are all at once: a ``DeploymentConfig`` is recorded but every update replaces the whole fleet
once the new one answers its pings; an update that fails leaves the old config in service with the
``FailureReason`` set. Each instance of a variant is one model server process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.algorithm_images import check_object_detection_image
from local_aws.sagemaker_service.endpoints import (
    DEPLOYED_STATUSES,
    DEPLOYING_STATUSES,
    Endpoint,
    EndpointConfigStore,
    EndpointStore,
    VariantSpec,
)
from local_aws.sagemaker_service.errors import ValidationError
from local_aws.sagemaker_service.job_api import echoed_request, list_page
from local_aws.sagemaker_service.models import Model, ModelStore
from local_aws.sagemaker_service.protocol import Handler

# These List operations sort newest first unless asked otherwise.
_LIST_ORDER = "Descending"


class HostingApi:
    def __init__(
        self,
        models: ModelStore,
        endpoint_configs: EndpointConfigStore,
        endpoints: EndpointStore,
        config: LocalAwsConfig,
        on_change: Callable[[], None],
    ) -> None:
        self.models = models
        self.endpoint_configs = endpoint_configs
        self.endpoints = endpoints
        self.config = config
        self.on_change = on_change

    def handlers(self) -> dict[str, Handler]:
        return {
            "CreateModel": self.create_model,
            "DescribeModel": self.describe_model,
            "DeleteModel": self.delete_model,
            "ListModels": self.list_models,
            "CreateEndpointConfig": self.create_endpoint_config,
            "DescribeEndpointConfig": self.describe_endpoint_config,
            "DeleteEndpointConfig": self.delete_endpoint_config,
            "ListEndpointConfigs": self.list_endpoint_configs,
            "CreateEndpoint": self.create_endpoint,
            "DescribeEndpoint": self.describe_endpoint,
            "UpdateEndpoint": self.update_endpoint,
            "DeleteEndpoint": self.delete_endpoint,
            "ListEndpoints": self.list_endpoints,
        }

    # Models.

    def create_model(self, params: dict[str, Any]) -> dict[str, Any]:
        field, container = _single_container(params)
        if container.get("ModelPackageName") is not None or container.get("Image") is None:
            raise ValidationError(f"{field}.Image is required: the local stack runs the algorithm's image.")
        try:
            check_object_detection_image(container["Image"], f"{field}.Image")
        except ValueError as error:
            raise ValidationError(str(error)) from error
        if container.get("Mode", "SingleModel") != "SingleModel":
            raise ValidationError(f"{field}.Mode {container['Mode']!r} is not served: only SingleModel is.")
        url = container.get("ModelDataUrl")
        if url is None or not url.startswith("s3://") or "/" not in url.removeprefix("s3://").strip("/"):
            raise ValidationError(
                f"{field}.ModelDataUrl {url!r} is not the S3 URI of a model.tar.gz: the object-detection"
                " algorithm serves a model trained by a training job, s3://<bucket>/<key>."
            )
        model = self.models.create(params)
        return {"ModelArn": model.arn}

    def describe_model(self, params: dict[str, Any]) -> dict[str, Any]:
        model = self.models.get(params["ModelName"])
        return echoed_request("DescribeModel", model.request) | {
            "ModelArn": model.arn,
            "CreationTime": model.creation_time,
        }

    def delete_model(self, params: dict[str, Any]) -> None:
        self.models.delete(params["ModelName"])

    def list_models(self, params: dict[str, Any]) -> dict[str, Any]:
        page, next_token = list_page(self.models.all(), params, default_order=_LIST_ORDER)
        return {
            "Models": [
                {"ModelName": model.name, "ModelArn": model.arn, "CreationTime": model.creation_time}
                for model in page
            ],
            "NextToken": next_token,
        }

    # Endpoint configs.

    def create_endpoint_config(self, params: dict[str, Any]) -> dict[str, Any]:
        for unsupported in ("AsyncInferenceConfig", "ExplainerConfig", "ShadowProductionVariants"):
            if params.get(unsupported):
                raise ValidationError(
                    f"{unsupported} is not served by the local stack: only real-time hosting."
                )
        capture = params.get("DataCaptureConfig")
        if capture is not None and capture.get("EnableCapture", True):
            raise ValidationError("DataCaptureConfig is not served by the local stack: it captures no data.")
        variants = params["ProductionVariants"]
        seen: set[str] = set()
        for index, variant in enumerate(variants):
            name = variant["VariantName"]
            if name in seen:
                raise ValidationError(f"ProductionVariants[{index}].VariantName {name!r} is used twice.")
            seen.add(name)
            if variant.get("ModelName") is None:
                raise ValidationError(
                    f"ProductionVariants[{index}].ModelName is required: the local stack serves models, not"
                    " inference components."
                )
            self.models.get(variant["ModelName"])
        config = self.endpoint_configs.create(params)
        return {"EndpointConfigArn": config.arn}

    def describe_endpoint_config(self, params: dict[str, Any]) -> dict[str, Any]:
        config = self.endpoint_configs.get(params["EndpointConfigName"])
        return echoed_request("DescribeEndpointConfig", config.request) | {
            "EndpointConfigArn": config.arn,
            "CreationTime": config.creation_time,
        }

    def delete_endpoint_config(self, params: dict[str, Any]) -> None:
        """As on AWS, a config may be deleted while an endpoint uses it: the endpoint keeps serving."""
        self.endpoint_configs.delete(params["EndpointConfigName"])

    def list_endpoint_configs(self, params: dict[str, Any]) -> dict[str, Any]:
        page, next_token = list_page(self.endpoint_configs.all(), params, default_order=_LIST_ORDER)
        return {
            "EndpointConfigs": [
                {
                    "EndpointConfigName": config.name,
                    "EndpointConfigArn": config.arn,
                    "CreationTime": config.creation_time,
                }
                for config in page
            ],
            "NextToken": next_token,
        }

    # Endpoints.

    def create_endpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        existing = self.endpoints.find(params["EndpointName"])
        if existing is not None:
            raise ValidationError(f'Cannot create already existing endpoint "{existing.arn}".')
        variants = self._variants_of(params["EndpointConfigName"])
        endpoint = self.endpoints.create(params, variants)
        self.on_change()
        return {"EndpointArn": endpoint.arn}

    def describe_endpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        endpoint = self.endpoints.get(params["EndpointName"])
        pending = None
        if endpoint.status == "Updating":
            pending = {
                "EndpointConfigName": endpoint.pending_config_name,
                "ProductionVariants": [_pending_summary(variant) for variant in endpoint.pending_variants],
                "StartTime": endpoint.pending_start_time,
            }
        return {
            "EndpointName": endpoint.name,
            "EndpointArn": endpoint.arn,
            "EndpointConfigName": endpoint.config_name,
            "ProductionVariants": (
                [_variant_summary(variant) for variant in endpoint.variants]
                if endpoint.status in DEPLOYED_STATUSES
                else None
            ),
            "EndpointStatus": endpoint.status,
            "FailureReason": endpoint.failure_reason,
            "CreationTime": endpoint.creation_time,
            "LastModifiedTime": endpoint.last_modified_time,
            "LastDeploymentConfig": endpoint.request.get("DeploymentConfig"),
            "PendingDeploymentSummary": pending,
        }

    def update_endpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        endpoint = self.endpoints.get(params["EndpointName"])
        variants = self._variants_of(params["EndpointConfigName"])
        self._check_updatable(endpoint)
        if not self.endpoints.request_update(endpoint.name, params["EndpointConfigName"], variants):
            # Its status changed since it was read.
            self._check_updatable(self.endpoints.get(endpoint.name))
            raise ValidationError(f'Cannot update in-progress endpoint "{endpoint.arn}".')
        self.on_change()
        return {"EndpointArn": endpoint.arn}

    def delete_endpoint(self, params: dict[str, Any]) -> None:
        """Any endpoint may be deleted; a deployment under way is abandoned. Deleting one twice is a no-op."""
        endpoint = self.endpoints.get(params["EndpointName"])
        if endpoint.status != "Deleting":
            self.endpoints.request_delete(endpoint.name)
            self.on_change()

    def list_endpoints(self, params: dict[str, Any]) -> dict[str, Any]:
        page, next_token = list_page(self.endpoints.all(), params, default_order=_LIST_ORDER)
        return {
            "Endpoints": [
                {
                    "EndpointName": endpoint.name,
                    "EndpointArn": endpoint.arn,
                    "CreationTime": endpoint.creation_time,
                    "LastModifiedTime": endpoint.last_modified_time,
                    "EndpointStatus": endpoint.status,
                }
                for endpoint in page
            ],
            "NextToken": next_token,
        }

    def _check_updatable(self, endpoint: Endpoint) -> None:
        if endpoint.status in (*DEPLOYING_STATUSES, "Deleting"):
            raise ValidationError(f'Cannot update in-progress endpoint "{endpoint.arn}".')
        if endpoint.status == "Failed":
            raise ValidationError(
                f'Cannot update failed endpoint "{endpoint.arn}": delete it and create it again.'
            )

    def _variants_of(self, config_name: str) -> list[VariantSpec]:
        """The config's variants with their models' images and data, as the endpoint will deploy them."""
        config = self.endpoint_configs.get(config_name)
        return [
            _variant_spec(variant, self.models.get(variant["ModelName"]))
            for variant in config.request["ProductionVariants"]
        ]


def _single_container(params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    primary = params.get("PrimaryContainer")
    containers = params.get("Containers") or []
    if primary is not None and containers:
        raise ValidationError("Specify either PrimaryContainer or Containers, not both.")
    if primary is not None:
        return "PrimaryContainer", primary
    if len(containers) != 1:
        raise ValidationError(
            f"The model has {len(containers)} containers; the local stack serves models of one container"
            " (PrimaryContainer)."
        )
    return "Containers[0]", containers[0]


def _variant_spec(variant: dict[str, Any], model: Model) -> VariantSpec:
    return VariantSpec(
        variant_name=variant["VariantName"],
        model_name=model.name,
        image=model.image,
        model_data_url=model.model_data_url or "",
        initial_weight=float(variant.get("InitialVariantWeight", 1.0)),
        instance_type=variant.get("InstanceType"),
        instance_count=int(variant.get("InitialInstanceCount", 1)),
        startup_timeout_s=variant.get("ContainerStartupHealthCheckTimeoutInSeconds"),
    )


def _variant_summary(variant: VariantSpec) -> dict[str, Any]:
    return {
        "VariantName": variant.variant_name,
        "DeployedImages": [{"SpecifiedImage": variant.image}],
        "CurrentWeight": variant.initial_weight,
        "DesiredWeight": variant.initial_weight,
        "CurrentInstanceCount": variant.instance_count,
        "DesiredInstanceCount": variant.instance_count,
    }


def _pending_summary(variant: VariantSpec) -> dict[str, Any]:
    return {
        "VariantName": variant.variant_name,
        "DeployedImages": [{"SpecifiedImage": variant.image}],
        "DesiredWeight": variant.initial_weight,
        "DesiredInstanceCount": variant.instance_count,
        "InstanceType": variant.instance_type,
    }
