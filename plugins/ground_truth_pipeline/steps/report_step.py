"""The report group: the run's report completed with the trained model, its batch transform and its endpoint.

It runs last, once the endpoint has answered, and reads everything from where the run left it: the training
job's validation mAP per epoch from its CloudWatch log, the batch transform's ``.out`` files, the endpoint's
response kept under ``predictions/``, and the label categories that name the predicted classes. It does not
wait for the endpoint's deletion, and the deletion does not wait for it.
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections.abc import Mapping
from typing import Any

from ground_truth_pipeline.aws_clients import AwsClients
from ground_truth_pipeline.object_store import split_s3_uri
from ground_truth_pipeline.steps.deploy_step import REALTIME_RESPONSE_FILENAME, batch_transform_predictions
from ground_truth_pipeline.steps.run_settings import ExperimentStep
from ground_truth_pipeline.training_curves import read_training_curve

log = logging.getLogger(__name__)

# The hyperparameters the report lists, in this order, when the training job has them.
REPORTED_HYPERPARAMETERS = ("base_network", "epochs", "image_shape", "mini_batch_size", "learning_rate")


def complete_report(
    experiment: dict[str, str],
    training: Mapping[str, Any],
    transform: Mapping[str, Any],
    endpoint_call: Mapping[str, Any],
    context: Mapping[str, Any],
    clients: AwsClients | None = None,
) -> dict[str, Any]:
    """Add the trained model, the batch predictions and the endpoint's answer to ``analysis/report.html``.

    ``training`` and ``transform`` are the training and transform operators' XComs, ``endpoint_call`` the
    invoke task's (the endpoint's name and the key of the image it was sent).
    """
    from ground_truth_pipeline.reports import (
        EndpointAnswer,
        ImagePredictions,
        TrainedModel,
        complete_run_report,
    )

    step = ExperimentStep.from_context(experiment, context, clients)
    run, layout, store = step.run, step.layout, step.store
    response_key = layout.prediction_key(REALTIME_RESPONSE_FILENAME)
    if not store.exists(response_key):
        raise ValueError(f"The endpoint's response is missing: s3://{run.bucket}/{response_key}")
    response = json.loads(store.read_bytes(response_key))
    endpoint = EndpointAnswer(
        endpoint_name=endpoint_call["endpoint"],
        answer=ImagePredictions(layout.uri_of_key(endpoint_call["image"]), response["prediction"]),
        response_filename=posixpath.relpath(response_key, layout.analysis_prefix),
    )
    batch = [
        ImagePredictions(layout.uri_of_key(image_key), predictions)
        for image_key, predictions in batch_transform_predictions(step, transform)
    ]
    job = training["Training"]
    curve = read_training_curve(step.clients.logs, job["TrainingJobName"])
    facts = training_facts(job, curve.num_training_samples)
    model = TrainedModel(curve.job_name, curve.validation_map, facts)

    def fetch(uri: str) -> bytes:
        bucket, key = split_s3_uri(uri)
        return step.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    report = complete_run_report(
        store,
        layout.analysis_prefix,
        model=model,
        batch=batch,
        endpoint=endpoint,
        class_names=step.label_categories(),
        fetch=fetch,
        title=f"Labeling, training and predictions: {run.class_name}",
        threshold=float(step.params["prediction_threshold"]),
    )
    if report.unreadable_images:
        log.warning("Images that could not be drawn: %s", report.unreadable_images)
    final_map = curve.validation_map[-1] if curve.validation_map else None
    log.info(
        "Report completed: model %s, %d epochs, final validation mAP %s; %d held-out images",
        curve.job_name,
        len(curve.validation_map),
        final_map,
        len(batch),
    )
    return {
        "report_uri": layout.uri_of_key(layout.analysis_key("report.html")),
        "training_job": curve.job_name,
        "epochs_logged": len(curve.validation_map),
        "final_validation_map": final_map,
        "held_out_images": len(batch),
    }


def training_facts(job: Mapping[str, Any], logged_samples: int | None) -> dict[str, Any]:
    """What the report lists about a training job (a DescribeTrainingJob answer), in reading order."""
    hyperparameters = job.get("HyperParameters", {})
    final_metrics = {m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])}
    facts: dict[str, Any] = {
        "training job": job["TrainingJobName"],
        "status": job.get("TrainingJobStatus"),
        "training samples": logged_samples or _number(hyperparameters.get("num_training_samples")),
    }
    for name in REPORTED_HYPERPARAMETERS:
        if name in hyperparameters:
            facts[name.replace("_", " ")] = _number(hyperparameters[name])
    facts["training time (s)"] = job.get("TrainingTimeInSeconds")
    if "validation:mAP" in final_metrics:
        facts["final validation:mAP (SageMaker)"] = float(final_metrics["validation:mAP"])
    facts["model artifact"] = job.get("ModelArtifacts", {}).get("S3ModelArtifacts")
    return facts


def _number(value: Any) -> Any:
    """A hyperparameter as SageMaker keeps it (a string) as the number it stands for, if it is one."""
    if not isinstance(value, str):
        return value
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value
