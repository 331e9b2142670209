"""The deploy group: model, batch transform and endpoint requests, predictions, and the endpoint teardown."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from ground_truth_pipeline.aws_clients import AwsClients
from ground_truth_pipeline.object_store import S3ObjectStore, split_s3_uri
from ground_truth_pipeline.sagemaker_requests import endpoint_operator_config
from ground_truth_pipeline.sagemaker_requests import model_request as build_model_request
from ground_truth_pipeline.sagemaker_requests import transform_job_request as build_transform_job_request
from ground_truth_pipeline.steps.run_settings import AWS_CONN_ID, ExperimentStep

if TYPE_CHECKING:
    from ground_truth_pipeline.aws.resumable_sagemaker_hook import ResumableSageMakerHook

log = logging.getLogger(__name__)

IMAGE_CONTENT_TYPE = "application/x-image"
REALTIME_RESPONSE_FILENAME = "realtime-response.json"
ENDPOINT_DELETE_POLL_S = 15.0
ENDPOINT_DELETE_MAX_WAIT_S = 1800.0


def model_request(
    experiment: dict[str, str],
    training: Mapping[str, Any],
    context: Mapping[str, Any],
    clients: AwsClients | None = None,
) -> dict[str, Any]:
    """CreateModel for the trained artifact, served by the algorithm's own image."""
    step = ExperimentStep.from_context(experiment, context, clients)
    job = training["Training"]
    return build_model_request(
        model_name=step.run.resource_name("model"),
        image_uri=job["AlgorithmSpecification"]["TrainingImage"],
        model_data_url=job["ModelArtifacts"]["S3ModelArtifacts"],
        role_arn=step.settings.role_arn(),
    )


def transform_job_request(
    experiment: dict[str, str],
    model: Mapping[str, Any],
    context: Mapping[str, Any],
    clients: AwsClients | None = None,
) -> dict[str, Any]:
    """CreateTransformJob over the held-out images of the experiment."""
    step = ExperimentStep.from_context(experiment, context, clients)
    layout = step.layout
    return build_transform_job_request(
        job_name=step.run.resource_name("transform"),
        model_name=model["Model"]["ModelName"],
        input_prefix_uri=layout.uri_of_key(layout.test_images_prefix),
        output_uri=layout.transform_output_uri,
        instance_type=step.params["transform_instance_type"],
        content_type=IMAGE_CONTENT_TYPE,
    )


def plot_batch_predictions(
    experiment: dict[str, str],
    transform: Mapping[str, Any],
    context: Mapping[str, Any],
    clients: AwsClients | None = None,
) -> dict[str, Any]:
    """Draw each held-out image with the batch transform's predictions above the threshold."""
    from ground_truth_pipeline.reports import write_prediction_report

    step = ExperimentStep.from_context(experiment, context, clients)
    run, layout, store = step.run, step.layout, step.store
    threshold = float(step.params["prediction_threshold"])
    class_names = step.label_categories()
    drawn = {}
    for image_key, predictions in batch_transform_predictions(step, transform):
        relative = image_key[len(layout.test_images_prefix) :]
        name = PurePosixPath(relative).stem
        written = write_prediction_report(
            store,
            layout.prediction_key(f"batch-{name}"),
            image=store.read_bytes(image_key),
            predictions=predictions,
            threshold=threshold,
            title=f"Batch transform: {run.class_name} in {relative}",
            class_names=class_names,
        )
        drawn[relative] = written.boxes_drawn
    log.info("Batch predictions above %.2f per image: %s", threshold, drawn)
    return {"images": len(drawn), "boxes_above_threshold": drawn}


def batch_transform_predictions(
    step: ExperimentStep, transform: Mapping[str, Any]
) -> Iterator[tuple[str, list[list[float]]]]:
    """(held-out image key, its predictions) for every held-out image, in key order, from the transform's
    ``<output>/<image>.out`` files (``transform``: the transform operator's XCom)."""
    layout = step.layout
    output_bucket, output_prefix = split_s3_uri(transform["Transform"]["TransformOutput"]["S3OutputPath"])
    output_store = S3ObjectStore(step.clients.s3, output_bucket)
    for image_key in step.store.list_keys(layout.test_images_prefix):
        relative = image_key[len(layout.test_images_prefix) :]
        output_key = f"{output_prefix.rstrip('/')}/{relative}.out"
        if not output_store.exists(output_key):
            raise ValueError(
                f"The batch transform wrote no output for s3://{step.run.bucket}/{image_key}: "
                f"s3://{output_bucket}/{output_key} is missing"
            )
        yield image_key, json.loads(output_store.read_bytes(output_key))["prediction"]


def endpoint_request(
    experiment: dict[str, str],
    model: Mapping[str, Any],
    context: Mapping[str, Any],
    clients: AwsClients | None = None,
) -> dict[str, Any]:
    """The endpoint config and endpoint for the provider's endpoint operator."""
    step = ExperimentStep.from_context(experiment, context, clients)
    return endpoint_operator_config(
        config_name=step.run.resource_name("epc"),
        endpoint_name=step.run.resource_name("endpoint"),
        model_name=model["Model"]["ModelName"],
        instance_type=step.params["endpoint_instance_type"],
    )


def invoke_endpoint(
    experiment: dict[str, str],
    endpoint: Mapping[str, Any],
    context: Mapping[str, Any],
    clients: AwsClients | None = None,
) -> dict[str, Any]:
    """Send the first held-out image to the endpoint, keep the response and draw its predictions."""
    from ground_truth_pipeline.reports import write_prediction_report

    step = ExperimentStep.from_context(experiment, context, clients)
    run, layout, store = step.run, step.layout, step.store
    image_keys = list(store.list_keys(layout.test_images_prefix))
    if not image_keys:
        raise ValueError(f"No held-out image under s3://{run.bucket}/{layout.test_images_prefix} to send")
    image = store.read_bytes(image_keys[0])
    endpoint_name = endpoint["Endpoint"]["EndpointName"]
    response = step.clients.sagemaker_runtime.invoke_endpoint(
        EndpointName=endpoint_name, ContentType=IMAGE_CONTENT_TYPE, Body=image
    )
    body = response["Body"].read()
    predictions = json.loads(body)["prediction"]
    store.write_bytes(
        layout.prediction_key(REALTIME_RESPONSE_FILENAME), body, content_type="application/json"
    )
    threshold = float(step.params["prediction_threshold"])
    written = write_prediction_report(
        store,
        layout.prediction_key("realtime"),
        image=image,
        predictions=predictions,
        threshold=threshold,
        title=f"Endpoint {endpoint_name}: {run.class_name}",
        class_names=step.label_categories(),
    )
    return {"endpoint": endpoint_name, "image": image_keys[0], "boxes_above_threshold": written.boxes_drawn}


def delete_endpoint(
    endpoint_request: Mapping[str, Any],
    hook: ResumableSageMakerHook | None = None,
    poll_seconds: float = ENDPOINT_DELETE_POLL_S,
    max_wait_seconds: float = ENDPOINT_DELETE_MAX_WAIT_S,
) -> dict[str, Any]:
    """Delete the run's endpoint and every endpoint config it made; what does not exist is skipped.

    A retried endpoint task may have moved the endpoint to a config named ``<config>-2`` (see
    ``resumable_operators``), so every config on that name path is deleted, once the endpoint is gone.
    ``hook``: by default one on the steps' connection.
    """
    from ground_truth_pipeline.aws.resumable_sagemaker_hook import ResumableSageMakerHook

    hook = hook or ResumableSageMakerHook(aws_conn_id=AWS_CONN_ID)
    endpoint_deleted = hook.delete_endpoint_and_wait(
        endpoint_request["Endpoint"]["EndpointName"],
        check_interval=poll_seconds,
        max_ingestion_time=max_wait_seconds,
    )
    deleted_configs = hook.delete_endpoint_configs(endpoint_request["EndpointConfig"]["EndpointConfigName"])
    log.info("Deleted endpoint configs: %s", deleted_configs or "none existed")
    return {"endpoint_deleted": endpoint_deleted, "endpoint_configs_deleted": deleted_configs}
