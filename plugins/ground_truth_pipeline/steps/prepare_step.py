"""The prepare group: choose the images, copy them into the experiment, write what the labeling job reads.

The images come from one of two sources: Open Images of one class (the default), or, when the param
``images_prefix`` is set, a team's own images in the partition of an S3 prefix that the run's data interval
selects. Either way each image sent to labeling is first claimed in the class's labeled-image record, so no
run pays twice for one image of one class; a run with nothing new to label is skipped (no job, no cost).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ground_truth_pipeline.aws_clients import AwsClients
from ground_truth_pipeline.boxes import open_images_to_xyxy
from ground_truth_pipeline.experiment import ExperimentLayout, ExperimentRun
from ground_truth_pipeline.manifests import input_manifest
from ground_truth_pipeline.object_store import S3ObjectStore, split_s3_uri
from ground_truth_pipeline.open_images import (
    DEFAULT_DENY_LIST,
    SelectedImage,
    class_and_subclasses,
    load_class_descriptions,
    read_reference_boxes,
    resolve_class,
    selected_images_to_json_lines,
)
from ground_truth_pipeline.open_images import (
    select_images as select_open_images,
)
from ground_truth_pipeline.partitions import (
    IMAGES_PREFIX_PARAM,
    PartitionChoice,
    choose_partition_images,
    image_suffix,
    render_images_prefix,
    task_renderer,
)
from ground_truth_pipeline.sources import open_text, read_json
from ground_truth_pipeline.steps.claims import labeled_images_of
from ground_truth_pipeline.steps.run_settings import ExperimentStep, RunSettings

log = logging.getLogger(__name__)

COPY_THREADS = 8
# Label categories of a team's own images besides class_name (Open Images runs label their class only).
EXTRA_CATEGORIES_PARAM = "extra_label_categories"
EXAMPLE_IMAGES = 2


def select_images(context: Mapping[str, Any], clients: AwsClients | None = None) -> dict[str, str]:
    """Pick the images to label and the held-out ones, claim the first, and keep what later tasks read.

    Returns the experiment (``ExperimentRun.as_dict``), the small value every later task starts from.
    Raises ``AirflowSkipException`` when there is nothing new to label, so the later tasks are skipped.
    """
    settings = RunSettings.from_context(context, clients)
    params, s3 = settings.params, settings.clients.s3
    check_bucket(s3, params["bucket"], settings.clients.region)
    template = str(params.get(IMAGES_PREFIX_PARAM) or "").strip()
    if template:
        return _select_partition_images(settings, template, task_renderer(context))
    return _select_open_images(settings)


def _select_open_images(settings: RunSettings) -> dict[str, str]:
    params, s3 = settings.params, settings.clients.s3
    with open_text(params["open_images_class_descriptions"], s3) as stream:
        descriptions = load_class_descriptions(stream, source=params["open_images_class_descriptions"])
    open_images_class = resolve_class(params["class_name"], descriptions)
    hierarchy = read_json(params["open_images_hierarchy"], s3)
    class_mids = class_and_subclasses(hierarchy, open_images_class.mid)
    log.info(
        "Class %s (%s) with %d subclasses",
        open_images_class.display_name,
        open_images_class.mid,
        len(class_mids) - 1,
    )
    run = _experiment_run(settings, open_images_class.display_name, open_images_class.mid)
    claims = labeled_images_of(settings.clients, run)
    images_prefix = _open_images_prefix(params["open_images_images"])

    with open_text(params["open_images_bbox_csv"], s3) as stream:
        selection = select_open_images(
            stream,
            class_mids,
            count=int(params["n_images"]),
            held_out=int(params["n_test_images"]),
            deny_list=DEFAULT_DENY_LIST,
            source=params["open_images_bbox_csv"],
            accept=lambda image_id: claims.claim(f"{images_prefix}{image_id}.jpg"),
        )
    log.info(
        "Selected %d images to label and %d held-out images after reading %d rows",
        len(selection.labeled),
        len(selection.held_out),
        selection.rows_read,
    )
    store = S3ObjectStore(s3, run.bucket)
    store.write_bytes(
        run.layout.reference_boxes_key,
        selected_images_to_json_lines(selection.labeled + selection.held_out).encode(),
        content_type="application/x-ndjson",
    )
    images = selection.labeled + selection.held_out
    summary = {
        "source": "open_images",
        "class_name": open_images_class.display_name,
        "label_categories": [open_images_class.display_name],
        "class_mid": open_images_class.mid,
        "class_and_subclasses": sorted(class_mids),
        "labeled_image_ids": [image.image_id for image in selection.labeled],
        "held_out_image_ids": [image.image_id for image in selection.held_out],
        "source_uris": {image.image_id: f"{images_prefix}{image.image_id}.jpg" for image in images},
        "bbox_csv_rows_read": selection.rows_read,
    }
    _write_summary(store, run.layout, summary)
    return run.as_dict()


def _select_partition_images(
    settings: RunSettings, template: str, render: Callable[[str], str]
) -> dict[str, str]:
    from airflow.sdk.exceptions import AirflowSkipException

    from ground_truth_pipeline.sagemaker_requests import label_categories

    params, s3 = settings.params, settings.clients.s3
    where = render_images_prefix(template, render)
    class_name = str(params["class_name"]).strip()
    categories = list(dict.fromkeys([class_name, *(params.get(EXTRA_CATEGORIES_PARAM) or [])]))
    label_categories(categories)  # a bad list fails here, before any image is claimed
    run = _experiment_run(settings, class_name, "")
    claims = labeled_images_of(settings.clients, run)
    choice = choose_partition_images(
        s3,
        where,
        count=int(params["n_images"]),
        held_out=int(params["n_test_images"]),
        claim=claims.claim,
        is_recorded=claims.is_recorded,
    )
    for rejected in choice.not_images:
        log.warning("Not labeling %s: it is not an image (%s)", rejected.uri, rejected.reason)
    log.info(
        "%s: %d images to label and %d held out; %d skipped as labeled or claimed for %s by other runs, "
        "%d not images",
        where.uri,
        len(choice.labeled),
        len(choice.held_out),
        choice.already_labeled,
        class_name,
        len(choice.not_images),
    )
    if not choice.labeled:
        raise AirflowSkipException(
            f"Nothing new to label for {class_name} in {where.uri}: {choice.already_labeled} images already "
            f"labeled or claimed by other runs, {len(choice.not_images)} objects that are not images"
        )
    store = S3ObjectStore(s3, run.bucket)
    store.write_bytes(run.layout.reference_boxes_key, b"", content_type="application/x-ndjson")
    _write_summary(store, run.layout, _partition_summary(categories, where.uri, choice))
    return run.as_dict()


def _partition_summary(categories: list[str], images_prefix: str, choice: PartitionChoice) -> dict[str, Any]:
    images = choice.labeled + choice.held_out
    return {
        "source": "images_prefix",
        "images_prefix": images_prefix,
        "class_name": categories[0],
        "label_categories": categories,
        "class_mid": "",
        "labeled_image_ids": [image.image_id for image in choice.labeled],
        "held_out_image_ids": [image.image_id for image in choice.held_out],
        "source_uris": {image.image_id: image.uri for image in images},
        "already_labeled": choice.already_labeled,
        "not_images": [{"uri": item.uri, "reason": item.reason} for item in choice.not_images],
    }


def _experiment_run(settings: RunSettings, class_name: str, class_mid: str) -> ExperimentRun:
    return ExperimentRun(
        dag_id=settings.dag_id,
        run_id=settings.run_id,
        bucket=settings.params["bucket"],
        prefix=settings.params["prefix"],
        class_name=class_name,
        class_mid=class_mid,
    )


def _open_images_prefix(uri: str) -> str:
    bucket, prefix = split_s3_uri(uri)
    return f"s3://{bucket}/{prefix.rstrip('/') + '/' if prefix else ''}"


def _write_summary(store: S3ObjectStore, layout: ExperimentLayout, summary: dict[str, Any]) -> None:
    store.write_bytes(
        layout.selection_summary_key, json.dumps(summary, indent=2).encode(), "application/json"
    )


def check_bucket(s3: Any, bucket: str, region: str) -> None:
    """A clear error when the bucket is missing or in another region than the SageMaker jobs.

    The region comes from GetBucketLocation, not from a response header that S3-compatible stores may omit;
    an empty LocationConstraint means us-east-1, as AWS documents.
    """
    from botocore.exceptions import ClientError

    try:
        location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    except ClientError as err:
        code = err.response["Error"]["Code"]
        raise ValueError(f"S3 bucket {bucket!r} is not usable: {code} ({err})") from err
    bucket_region = location or "us-east-1"
    if bucket_region != region:
        raise ValueError(
            f"S3 bucket {bucket!r} is in {bucket_region}, but the SageMaker jobs run in {region}: "
            "Ground Truth needs a bucket in the job's region"
        )


def copy_images(
    experiment: dict[str, str], context: Mapping[str, Any], clients: AwsClients | None = None
) -> dict:
    """Copy the labeled and held-out images from their source into the experiment (server-side copies)."""
    step = ExperimentStep.from_context(experiment, context, clients)
    run, layout, s3 = step.run, step.layout, step.clients.s3
    summary = step.selection
    sources = summary["source_uris"]
    copies = [(i, layout.image_key(i, image_suffix(sources[i]))) for i in summary["labeled_image_ids"]]
    copies += [(i, layout.test_image_key(i, image_suffix(sources[i]))) for i in summary["held_out_image_ids"]]

    def copy_one(copy: tuple[str, str]) -> None:
        image_id, target_key = copy
        source_bucket, source_key = split_s3_uri(sources[image_id])
        try:
            s3.copy_object(
                Bucket=run.bucket, Key=target_key, CopySource={"Bucket": source_bucket, "Key": source_key}
            )
        except Exception as err:
            raise ValueError(
                f"Could not copy image {image_id} from {sources[image_id]} "
                f"to s3://{run.bucket}/{target_key}: {err}"
            ) from err

    with ThreadPoolExecutor(max_workers=COPY_THREADS) as pool:
        list(pool.map(copy_one, copies))
    log.info("Copied %d images into s3://%s/%s/", len(copies), run.bucket, layout.root_key)
    return {"images": len(summary["labeled_image_ids"]), "test_images": len(summary["held_out_image_ids"])}


def write_labeling_inputs(
    experiment: dict[str, str], context: Mapping[str, Any], clients: AwsClients | None = None
) -> dict[str, str]:
    """The input manifest, the label categories and the worker instructions template, in S3."""
    from ground_truth_pipeline.instructions import examples_figure, instructions_template
    from ground_truth_pipeline.sagemaker_requests import label_categories

    step = ExperimentStep.from_context(experiment, context, clients)
    run, layout, store = step.run, step.layout, step.store
    summary = step.selection
    image_ids, sources = summary["labeled_image_ids"], summary["source_uris"]
    image_keys = {
        image_id: layout.image_key(image_id, image_suffix(sources[image_id])) for image_id in image_ids
    }

    store.write_bytes(
        layout.input_manifest_key,
        input_manifest(layout.uri_of_key(image_keys[image_id]) for image_id in image_ids),
        content_type="application/x-ndjson",
    )
    categories = summary["label_categories"]
    store.write_bytes(
        layout.label_categories_key,
        json.dumps(label_categories(categories)).encode(),
        content_type="application/json",
    )
    with store.open_text(layout.reference_boxes_key) as stream:
        reference = read_reference_boxes(stream, source=layout.reference_boxes_key)
    with_reference = [image_id for image_id in image_ids if image_id in reference][:EXAMPLE_IMAGES]
    examples = [_example(store, image_keys[image_id], reference[image_id]) for image_id in with_reference]
    figure = examples_figure(examples, run.class_name) if examples else None
    template = instructions_template(" or ".join(categories), figure)
    store.write_bytes(layout.instructions_template_key, template.encode(), content_type="text/html")
    return {
        "manifest_uri": layout.uri_of_key(layout.input_manifest_key),
        "label_categories_uri": layout.uri_of_key(layout.label_categories_key),
        "template_uri": layout.uri_of_key(layout.instructions_template_key),
    }


def _example(store: S3ObjectStore, key: str, image: SelectedImage) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    with Image.open(io.BytesIO(store.read_bytes(key))) as decoded:
        pixels = np.asarray(decoded.convert("RGB"))
    boxes = open_images_to_xyxy(
        np.array([[b.xmin, b.xmax, b.ymin, b.ymax] for b in image.boxes]).reshape(-1, 4)
    )
    return pixels, boxes
