"""Runs the whole pipeline offline on the local stack and shows what it made.

``make demo`` calls this after starting the stack and seeding the synthetic Open Images: it creates the
experiment bucket, points Airflow's ``aws_default`` at the stack and runs the DAG end to end through
``dag.test()`` with the reference's quick settings (100 images, 5 workers, no automated labeling) and the
local stack's CPU-friendly training settings (``CPU_TRAINING``). At the end it prints a summary and copies
the report files (analysis, predictions) into ``demo-output/``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from scripts.dag_progress import run_dag_with_progress

ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "ground_truth_object_detection"
ROLE_ARN = "arn:aws:iam::123456789012:role/LocalGroundTruth"
PREDICTION_THRESHOLD = 0.2  # the DAG's default prediction_threshold
# The local stack's CPU network with its CPU-friendly values spelled out (the DAG's notebook defaults would
# apply otherwise) and 30 epochs for 80 training images: under a minute of training on two idle cores (more
# epochs overfit 80 images).
CPU_TRAINING = {
    "base_network": "tiny-vgg",
    "use_pretrained_model": 0,
    "epochs": 30,
    "mini_batch_size": 8,
    "learning_rate": 0.003,
    "optimizer": "adam",
    "image_shape": 256,
}


def point_at_stack() -> object:
    """Set the stack's client variables and Airflow connection in this process; return the stack config."""
    from local_aws.config import LocalAwsConfig
    from local_aws.environment import stack_variables

    config = LocalAwsConfig()
    os.environ.update(stack_variables(config))
    return config


def run_dag(config: object, conf: dict, output: Path) -> str:
    """Run the DAG with one line per task; Airflow's own log goes to ``output/airflow.log``."""
    if output.exists():
        shutil.rmtree(output)
    log = output / "airflow.log"
    print(f"Airflow's log: {log}", flush=True)
    started = time.monotonic()
    state = run_dag_with_progress(DAG_ID, conf, log, config.boto3_client("sagemaker"))
    print(f"\nDAG run {state} in {time.monotonic() - started:.0f} s")
    return state


def newest_run_root(s3: object, bucket: str, prefix: str) -> tuple[str, list[str]]:
    """The root key of the class's newest run (the one whose metrics were written last) and all its keys."""
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    ]
    metrics = sorted(
        (k for k in keys if k.endswith("/analysis/metrics.json")),
        key=lambda k: s3.head_object(Bucket=bucket, Key=k)["LastModified"],
    )
    if not metrics:
        raise SystemExit(f"No analysis was written under s3://{bucket}/{prefix}")
    run_root = metrics[-1].rsplit("/analysis/", 1)[0]
    return run_root, [k for k in keys if k.startswith(run_root + "/")]


def copy_outputs(s3: object, bucket: str, run_root: str, keys: list[str], target: Path) -> list[Path]:
    """Copy the run's analysis, predictions, transform output and inputs into ``target``."""
    folders = ("analysis/", "predictions/", "transform/output/")
    inputs = {"input.manifest", "instructions.template", "selection.json"}
    copied = []
    for key in keys:
        relative = key[len(run_root) + 1 :]
        if not (relative.startswith(folders) or relative in inputs):
            continue
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(path))
        copied.append(path)
    return copied


def print_summary(
    config: object, metrics: dict, output: Path, threshold: float, workforce: str = "simulated workers"
) -> None:
    print(
        f"\nLabeled {metrics['images']} images ({metrics['failed_images']} failed): "
        f"{metrics['boxes']['consolidated']} boxes from {metrics['boxes']['worker']} worker boxes by "
        f"{metrics['workers']} {workforce}."
    )
    cost = metrics["cost_usd"]
    print(
        f"At the reference's prices the labels would cost ${cost['total']:.2f}: "
        f"{metrics['human_labeled_images']} by humans at ${cost['price_per_human_label']:.3f}, "
        f"{metrics['auto_labeled_images']} by the machine at ${cost['price_per_auto_label']:.3f} "
        f"(all by humans: ${cost['all_by_humans']:.2f})."
    )
    print(quality_summary(metrics))
    sagemaker = config.boto3_client("sagemaker")
    run_resources = metrics["labeling_job"].rsplit("-", 1)[0]  # gtod-<class>-<run digest>-<kind>
    [training] = sagemaker.list_training_jobs(
        NameContains=run_resources, SortBy="CreationTime", SortOrder="Descending"
    )["TrainingJobSummaries"][:1]
    described = sagemaker.describe_training_job(TrainingJobName=training["TrainingJobName"])
    final = {m["MetricName"]: m["Value"] for m in described.get("FinalMetricDataList", [])}
    validation_map = final.get("validation:mAP", float("nan"))
    print(
        f"Training job {described['TrainingJobName']}: {described['TrainingJobStatus']} in "
        f"{described.get('TrainingTimeInSeconds', 0)} s, validation mAP {validation_map:.3f} "
        f"({described['HyperParameters']['base_network']}, image_shape "
        f"{described['HyperParameters']['image_shape']}, {described['HyperParameters']['epochs']} epochs)."
    )
    for out in sorted(output.glob("transform/output/**/*.out")):
        boxes = [row for row in json.loads(out.read_text())["prediction"] if row[1] >= threshold]
        print(f"Batch transform, {out.name}: {len(boxes)} boxes scoring at least {threshold}.")
    realtime = output / "predictions" / "realtime-response.json"
    if realtime.exists():
        rows = json.loads(realtime.read_text())["prediction"]
        best = ", ".join(f"{row[1]:.2f}" for row in rows[:3])
        print(
            f"Real-time endpoint: {sum(row[1] >= threshold for row in rows)} boxes scoring at least "
            f"{threshold} (best scores {best}); the endpoint was deleted at the end of the run."
        )


def quality_summary(metrics: dict) -> str:
    """The labels against the reference boxes, or that a run on a team's own images has none; then the
    workers' agreement with the labels, which needs none."""
    agreement = metrics["worker_agreement"]["mean_worker_miou_with_consolidated"]
    workers = f" Workers' boxes against the labels: mean mIoU {_score(agreement)}."
    if not metrics["reference_boxes"]:
        return f"No reference boxes: this run labeled your own images, so there is no mIoU or AP50.{workers}"
    detection = metrics["detection_vs_reference"]
    return (
        f"Against the Open Images boxes: mean image mIoU {_score(metrics['mean_image_miou']['all'])}, "
        f"AP50 {_score(detection['ap50'])}, precision {_score(detection['precision'])}, "
        f"recall {_score(detection['recall'])}.{workers}"
    )


def _score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def ensure_bucket(config: object, bucket: str) -> None:
    """Create the experiment bucket on the stack unless it is there."""
    s3 = config.boto3_client("s3")
    if bucket not in {existing["Name"] for existing in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=bucket)


def show_run(
    config: object,
    bucket: str,
    prefix: str,
    class_name: str,
    output: Path,
    workforce: str = "simulated workers",
) -> None:
    """Copy the class's newest run's report files into ``output`` and print its summary."""
    s3 = config.boto3_client("s3")
    class_prefix = f"{prefix}/{class_name.lower().replace(' ', '-')}/"
    run_root, keys = newest_run_root(s3, bucket, class_prefix)
    copied = copy_outputs(s3, bucket, run_root, keys, output)
    metrics = json.loads((output / "analysis" / "metrics.json").read_text())
    print_summary(config, metrics, output, PREDICTION_THRESHOLD, workforce)
    print(f"\n{len(copied)} files in {output}/; open {output / 'analysis' / 'report.html'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100, help="images to label (default 100)")
    parser.add_argument("--workers", type=int, default=5, help="workers per image (default 5)")
    parser.add_argument("--class-name", default="Bird")
    parser.add_argument("--bucket", default="ground-truth-od")
    parser.add_argument(
        "--auto-labeling",
        action="store_true",
        help="automated labeling; the DAG refuses it below LOCAL_AWS_AUTO_LABELING_MIN_OBJECTS (1,000)",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "demo-output")
    args = parser.parse_args()

    config = point_at_stack()
    from local_aws.synthetic_open_images import dataset_uris

    ensure_bucket(config, args.bucket)
    # Each demo is an experiment of its own: the class's record of labeled images lives under its prefix, and
    # a second demo in the same prefix would label the class's next images instead of showing the same run.
    prefix = f"demo/{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
    conf = {
        "class_name": args.class_name,
        "n_images": args.images,
        "workers_per_image": args.workers,
        "auto_labeling": args.auto_labeling,
        "bucket": args.bucket,
        "prefix": prefix,
        "role_arn": ROLE_ARN,
        "training_hyperparameters": CPU_TRAINING,
        **dataset_uris().as_dag_params(),
    }
    print(f"Running {DAG_ID} on the local stack with:")
    print(json.dumps(conf, indent=2))
    state = run_dag(config, conf, args.output)
    if state != "success":
        raise SystemExit(1)

    show_run(config, args.bucket, prefix, args.class_name, args.output)


if __name__ == "__main__":
    sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]
    main()
