"""Automated data labeling on the local stack, in the reference notebook's full demo configuration.

A stack of its own (a temporary data directory, free ports) is started, seeded with the default synthetic
Open Images (seed 0, 2,500 images), and the pipeline's own selection picks the first ``--images`` (default
1,000) with a Bird or a bird species. One labeling job labels them as the notebook's full demo does: the
public crowd (simulated), 5 workers per image, ``MaxConcurrentTaskCount`` 200, automated labeling on (the
request built by the pipeline's ``labeling_job_request``); the stack's minimum for automated labeling is
its default, 1,000 objects, and its training jobs use its default hyperparameters
(``auto_labeling_detector.HYPERPARAMETERS``), with one torch thread per job (``LOCAL_AWS_TORCH_THREADS``).
The job runs for real: human batches, training jobs of the object-detection algorithm, batch transforms,
thresholds; nothing is replaced by a stand-in.

Measured on the finished job, with the pipeline's own analysis (``analyse_labeling_job``):

- the share of machine labels (target >= 40%);
- the mean image mIoU of the machine labels against the seeded reference boxes (the notebook's helper
  metric; target >= 0.6), and that of the human labels for comparison;
- the wall time of the job, and of each training job;
- the cost at the notebook's prices (a human label $0.08 + 5 x $0.036 = $0.26, a machine label $0.08),
  against labeling every image by humans.

Figures are printed and written to ``bench/results/auto_labeling.json``; nothing is asserted.

Usage: ``.venv/bin/python bench/bench_auto_labeling.py [--images N] [--timeout S]``
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

from ground_truth_pipeline.analysis import analyse_labeling_job  # noqa: E402
from ground_truth_pipeline.instructions import instructions_template  # noqa: E402
from ground_truth_pipeline.labeling_output import LabelPrices  # noqa: E402
from ground_truth_pipeline.object_store import S3ObjectStore  # noqa: E402
from ground_truth_pipeline.open_images import class_and_subclasses, select_images  # noqa: E402
from ground_truth_pipeline.sagemaker_requests import (  # noqa: E402
    PublicCrowd,
    label_categories,
    labeling_job_request,
)
from local_aws.config import LocalAwsConfig  # noqa: E402
from local_aws.environment import config_variables  # noqa: E402
from local_aws.groundtruth.auto_labeling_detector import HYPERPARAMETERS, TRAINING_SAMPLES  # noqa: E402
from local_aws.seaweedfs import GRPC_PORT_OFFSET  # noqa: E402
from local_aws.synthetic_open_images import (  # noqa: E402
    BBOX_CSV_KEY,
    BUCKET,
    DEFAULT_IMAGES,
    HIERARCHY_KEY,
    IMAGES_PREFIX,
    MIDS,
    seed,
)

CLASS_NAME = "Bird"
DATASET_SEED = 0
DEFAULT_LABELED_IMAGES = 1000
WORKERS = 5
MAX_CONCURRENT_TASKS = 200
TASK_PRICE_USD = "0.036"
JOB_NAME = "bench-auto-labeling"
EXPERIMENT_BUCKET = "bench-auto-labeling"
ROLE_ARN = "arn:aws:iam::123456789012:role/GroundTruth"
TARGET_MACHINE_SHARE = 0.4
TARGET_MACHINE_MIOU = 0.6
RESULTS = ROOT / "bench" / "results" / "auto_labeling.json"
POLL_S = 2.0
TORCH_THREADS = 1
PORT_RANGE = (22000, 22760)  # gRPC companions stay below the ephemeral ports (32768 on)


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port(taken: set[int]) -> int:
    """A free port below the ephemeral range whose SeaweedFS gRPC companion (+10000) is free too."""
    for port in range(*PORT_RANGE):
        companion = port + GRPC_PORT_OFFSET
        if not {port, companion} & taken and _is_free(port) and _is_free(companion):
            taken.update({port, companion})
            return port
    raise SystemExit(f"no free port pair in {PORT_RANGE}")


def _stack_config(data_dir: Path) -> LocalAwsConfig:
    taken: set[int] = set()
    return LocalAwsConfig(
        data_dir=data_dir,
        s3_port=_free_port(taken),
        seaweed_master_port=_free_port(taken),
        seaweed_volume_port=_free_port(taken),
        seaweed_filer_port=_free_port(taken),
        sagemaker_port=_free_port(taken),
        moto_port=_free_port(taken),
        portal_port=_free_port(taken),
    )


def _stack(config: LocalAwsConfig, command: str) -> None:
    """``python -m local_aws <command>`` for this stack."""
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCAL_AWS_"))},
        **config_variables(config),
        # One torch thread per job: the training and transform jobs of an iteration share two cores.
        "LOCAL_AWS_TORCH_THREADS": str(TORCH_THREADS),
    }
    subprocess.run(
        [sys.executable, "-m", "local_aws", command], cwd=ROOT, env=environment, check=True, timeout=300
    )


def _read(s3: Any, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def prepare(config: LocalAwsConfig, images: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Seed the dataset, select the images and write the job's inputs; the request and the selection."""
    seed(config, images=DEFAULT_IMAGES, seed=DATASET_SEED)
    s3 = config.boto3_client("s3")
    hierarchy = json.loads(_read(s3, BUCKET, HIERARCHY_KEY))
    class_mids = class_and_subclasses(hierarchy, MIDS[CLASS_NAME])
    csv_text = _read(s3, BUCKET, BBOX_CSV_KEY).decode()
    selection = select_images(io.StringIO(csv_text), class_mids, images)
    s3.create_bucket(Bucket=EXPERIMENT_BUCKET)
    manifest = "".join(
        json.dumps({"source-ref": f"s3://{BUCKET}/{IMAGES_PREFIX}{image.image_id}.jpg"}) + "\n"
        for image in selection.labeled
    )
    inputs = {
        "input.manifest": manifest,
        "class_labels.json": json.dumps(label_categories([CLASS_NAME])),
        "instructions.template": instructions_template(CLASS_NAME, None),
    }
    for key, body in inputs.items():
        s3.put_object(Bucket=EXPERIMENT_BUCKET, Key=key, Body=body.encode())
    uri = f"s3://{EXPERIMENT_BUCKET}/"
    request = labeling_job_request(
        job_name=JOB_NAME,
        class_name=CLASS_NAME,
        manifest_uri=uri + "input.manifest",
        output_uri=uri + "output/",
        role_arn=ROLE_ARN,
        label_categories_uri=uri + "class_labels.json",
        template_uri=uri + "instructions.template",
        region=config.region,
        workforce=PublicCrowd(TASK_PRICE_USD),
        auto_labeling=True,
        workers_per_object=WORKERS,
        max_concurrent_tasks=MAX_CONCURRENT_TASKS,
    )
    return request, {image.image_id: image for image in selection.labeled}


def run_job(
    config: LocalAwsConfig, request: dict[str, Any], timeout_s: float
) -> tuple[dict[str, Any], float]:
    """Create the labeling job and wait for its end; its description and wall time."""
    sagemaker = config.boto3_client("sagemaker")
    started = time.monotonic()
    sagemaker.create_labeling_job(**request)
    while True:
        description = sagemaker.describe_labeling_job(LabelingJobName=JOB_NAME)
        if description["LabelingJobStatus"] in ("Completed", "Failed", "Stopped"):
            return description, time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            sagemaker.stop_labeling_job(LabelingJobName=JOB_NAME)
            raise SystemExit(f"the labeling job did not finish in {timeout_s:.0f} s; it was asked to stop")
        time.sleep(POLL_S)


def training_jobs(config: LocalAwsConfig) -> list[dict[str, Any]]:
    """The job's auto-labeling training jobs: name, status, seconds, samples and final validation mAP."""
    sagemaker = config.boto3_client("sagemaker")
    jobs = []
    for page in sagemaker.get_paginator("list_training_jobs").paginate(NameContains=JOB_NAME):
        for summary in page["TrainingJobSummaries"]:
            described = sagemaker.describe_training_job(TrainingJobName=summary["TrainingJobName"])
            metrics = {m["MetricName"]: m["Value"] for m in described.get("FinalMetricDataList", [])}
            jobs.append(
                {
                    "name": described["TrainingJobName"],
                    "status": described["TrainingJobStatus"],
                    "seconds": described.get("TrainingTimeInSeconds"),
                    "num_training_samples": int(described["HyperParameters"]["num_training_samples"]),
                    "validation_map": metrics.get("validation:mAP"),
                }
            )
    return sorted(jobs, key=lambda job: job["name"])


def thresholds(config: LocalAwsConfig) -> list[dict[str, Any]]:
    """Each iteration's confidence threshold, as ``threshold.json`` records it."""
    store = S3ObjectStore(config.boto3_client("s3"), EXPERIMENT_BUCKET)
    prefix = f"output/{JOB_NAME}/activelearning/"
    found = []
    for key in store.list_keys(prefix):
        if key.endswith("/validation/threshold.json"):
            document = json.loads(store.read_bytes(key))
            found.append(
                {
                    "iteration": int(key[len(prefix) :].split("/")[0]),
                    "confidence_threshold": document["confidence-threshold"],
                    "expected_mean_iou": document["expected-mean-iou"],
                    "validation_images_above": document["validation-objects-above-threshold"],
                    "validation_images": len(document["validation"]),
                }
            )
    return sorted(found, key=lambda item: item["iteration"])


def measure(config: LocalAwsConfig, selected: dict[str, Any], description: dict[str, Any]) -> dict[str, Any]:
    store = S3ObjectStore(config.boto3_client("s3"), EXPERIMENT_BUCKET)
    prices = LabelPrices(workers=WORKERS)
    analysis = analyse_labeling_job(store, f"output/{JOB_NAME}/", "category", selected, [CLASS_NAME], prices)
    machine = analysis.dataset.labeled_by_machine
    human = analysis.dataset.labeled_by_humans
    labeled = int(machine.sum() + human.sum())
    cost = analysis.metrics["cost_usd"]
    return {
        "counters": description["LabelCounters"],
        "machine_labels": int(machine.sum()),
        "human_labels": int(human.sum()),
        "machine_share": float(machine.sum()) / max(labeled, 1),
        "machine_miou_vs_reference": _mean(analysis.miou[machine]),
        "human_miou_vs_reference": _mean(analysis.miou[human]),
        "cost_usd": {
            "human": cost["human"],
            "machine": cost["auto"],
            "total": cost["total"],
            "all_by_humans": cost["all_by_humans"],
            "saving_share": 1.0 - cost["total"] / cost["all_by_humans"] if cost["all_by_humans"] else None,
            "price_per_human_label": prices.human,
            "price_per_machine_label": prices.auto,
        },
        "final_active_learning_model_arn": (description.get("LabelingJobOutput") or {}).get(
            "FinalActiveLearningModelArn"
        ),
    }


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=_positive("--images"), default=DEFAULT_LABELED_IMAGES)
    parser.add_argument("--timeout", type=_positive("--timeout"), default=3600, help="seconds for the job")
    return parser.parse_args(argv)


def _positive(name: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.isdigit() or int(text) < 1:
            raise argparse.ArgumentTypeError(f"{name} must be a positive whole number, got {text!r}")
        return int(text)

    return parse


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-auto-labeling-") as data_dir:
        config = _stack_config(Path(data_dir))
        _stack(config, "up")
        try:
            prepared = time.monotonic()
            request, selected = prepare(config, args.images)
            prepare_s = time.monotonic() - prepared
            description, job_s = run_job(config, request, args.timeout)
            figures = measure(config, selected, description)
            trainings = training_jobs(config)
            chosen = thresholds(config)
        finally:
            _stack(config, "down")
    result = {
        "settings": {
            "images": args.images,
            "dataset_images": DEFAULT_IMAGES,
            "dataset_seed": DATASET_SEED,
            "class": CLASS_NAME,
            "workers_per_object": WORKERS,
            "max_concurrent_tasks": MAX_CONCURRENT_TASKS,
            "auto_labeling_min_objects": config.auto_labeling_min_objects,
            "training_hyperparameters": HYPERPARAMETERS,
            "training_images_seen_per_iteration": TRAINING_SAMPLES,
            "torch_threads_per_job": TORCH_THREADS,
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
        },
        "status": description["LabelingJobStatus"],
        "failure_reason": description.get("FailureReason"),
        "prepare_s": round(prepare_s, 1),
        "job_wall_s": round(job_s, 1),
        **figures,
        "training_jobs": trainings,
        "thresholds": chosen,
        "targets": {
            f"machine share >= {TARGET_MACHINE_SHARE:.0%}": figures["machine_share"] >= TARGET_MACHINE_SHARE,
            f"machine labels' mean mIoU vs reference >= {TARGET_MACHINE_MIOU}": (
                figures["machine_miou_vs_reference"] is not None
                and figures["machine_miou_vs_reference"] >= TARGET_MACHINE_MIOU
            ),
        },
    }
    _print(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Wrote {RESULTS.relative_to(ROOT)}")


def _print(result: dict[str, Any]) -> None:
    cost = result["cost_usd"]
    print(f"Automated labeling of {result['settings']['images']} {CLASS_NAME} images: {result['status']}")
    print(f"  job wall time {result['job_wall_s']:.0f} s (inputs prepared in {result['prepare_s']:.0f} s)")
    print(
        f"  labels: {result['machine_labels']} by the machine ({result['machine_share']:.1%}), "
        f"{result['human_labels']} by humans"
    )
    for group in ("machine", "human"):
        value = result[f"{group}_miou_vs_reference"]
        print(f"  {group} labels' mean mIoU vs reference: {'-' if value is None else f'{value:.3f}'}")
    print(
        f"  cost: ${cost['total']:.2f} (humans ${cost['human']:.2f}, machine ${cost['machine']:.2f}) vs "
        f"${cost['all_by_humans']:.2f} all by humans"
    )
    for job in result["training_jobs"]:
        print(
            f"  training job {job['name']}: {job['status']}, {job['seconds']} s, "
            f"{job['num_training_samples']} images, validation mAP {job['validation_map']}"
        )
    for item in result["thresholds"]:
        print(
            f"  iteration {item['iteration']}: threshold {item['confidence_threshold']}, expected mIoU "
            f"{item['expected_mean_iou']} on {item['validation_images_above']} of "
            f"{item['validation_images']} validation images"
        )
    for name, met in result["targets"].items():
        print(f"{'MET    ' if met else 'NOT MET'} {name}")


if __name__ == "__main__":
    main()
