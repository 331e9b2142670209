"""The analyse group: the labeling job's analysis and report, written to the experiment's analysis/."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ground_truth_pipeline.analysis import analyse_labeling_job
from ground_truth_pipeline.aws_clients import AwsClients
from ground_truth_pipeline.labeling_output import LabelPrices, list_auto_labeling_training_jobs
from ground_truth_pipeline.object_store import ObjectStore, split_s3_uri
from ground_truth_pipeline.open_images import SelectedImage, read_reference_boxes
from ground_truth_pipeline.steps.label_step import LABEL_ATTRIBUTE_NAME
from ground_truth_pipeline.steps.run_settings import ExperimentStep
from ground_truth_pipeline.training_curves import read_training_curve

log = logging.getLogger(__name__)


def analyse_labels(
    experiment: dict[str, str],
    labeling_job: Mapping[str, Any],
    context: Mapping[str, Any],
    clients: AwsClients | None = None,
) -> dict[str, Any]:
    """Analyse the job and write metrics, tables, plots, PDFs and HTML.

    Label quality is compared with the run's reference boxes where it has them (Open Images); a run on a
    team's own images has none, and its metrics say so (``reference_boxes`` false, the comparison null).
    """
    from ground_truth_pipeline.reports import write_analysis_report

    step = ExperimentStep.from_context(experiment, context, clients)
    params, run, layout, store = step.params, step.run, step.layout, step.store
    job_name = labeling_job["LabelingJobName"]
    job_prefix = layout.labeling_job_key(job_name)

    reference = _reference_boxes(store, layout.reference_boxes_key)
    prices = LabelPrices.of_run(params)
    analysis = analyse_labeling_job(
        store,
        job_prefix,
        LABEL_ATTRIBUTE_NAME,
        reference,
        step.label_categories(),
        prices,
    )
    curves = [
        read_training_curve(step.clients.logs, job.job_name)
        for job in list_auto_labeling_training_jobs(store, job_prefix)
    ]
    metrics = dict(analysis.metrics)
    metrics["auto_labeling_models"] = [
        {
            "training_job": curve.job_name,
            "num_training_samples": curve.num_training_samples,
            "epochs": len(curve.validation_map),
            "final_validation_map": curve.validation_map[-1] if curve.validation_map else None,
        }
        for curve in curves
    ]
    store.write_bytes(layout.analysis_key("images.csv"), analysis.image_table_csv(), content_type="text/csv")

    def fetch(uri: str) -> bytes:
        bucket, key = split_s3_uri(uri)
        return step.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    report = write_analysis_report(
        store,
        layout.analysis_prefix,
        dataset=analysis.dataset,
        miou=analysis.miou,
        confidence=analysis.confidence,
        worker_agreement=analysis.worker_agreement,
        iterations=analysis.iterations,
        training_curves=[(curve.job_name, curve.validation_map) for curve in curves],
        confidence_curve=analysis.confidence_curve,
        metrics=metrics,
        fetch=fetch,
        class_name=run.class_name,
    )
    if report.unreadable_images:
        log.warning("Images that could not be drawn: %s", report.unreadable_images)
    log.info(
        "Labeled %d images (%d failed) for $%.2f; %s; mean worker agreement %s",
        metrics["images"],
        metrics["failed_images"],
        metrics["cost_usd"]["total"],
        _quality_against_reference(metrics),
        metrics["worker_agreement"]["mean_worker_miou_with_consolidated"],
    )
    return {
        "report_uri": layout.uri_of_key(layout.analysis_key("report.html")),
        "metrics_uri": layout.uri_of_key(layout.metrics_key),
        "images": metrics["images"],
        "failed_images": metrics["failed_images"],
        "reference_boxes": metrics["reference_boxes"],
        "mean_image_miou": metrics["mean_image_miou"]["all"],
        "ap50": metrics["detection_vs_reference"]["ap50"],
        "cost_usd": metrics["cost_usd"]["total"],
    }


def _reference_boxes(store: ObjectStore, key: str) -> dict[str, SelectedImage] | None:
    """The run's reference boxes by image id, or None when it has none to compare the labels with.

    The prepare step writes an empty reference file for a run on a team's own images (``images_prefix``).
    """
    with store.open_text(key) as stream:
        reference = read_reference_boxes(stream, source=key)
    return reference or None


def _quality_against_reference(metrics: Mapping[str, Any]) -> str:
    if not metrics["reference_boxes"]:
        return "no reference boxes, so no mIoU or AP50"
    return (
        f"mean image mIoU {metrics['mean_image_miou']['all']}; "
        f"AP50 {metrics['detection_vs_reference']['ap50']}"
    )
