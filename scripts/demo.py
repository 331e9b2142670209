"""Runs the pipeline offline on the local stack, as far as the stack serves it, and shows what it made.

``make demo`` calls this after starting the stack: it seeds the synthetic Open Images, creates the
experiment bucket, points Airflow's ``aws_default`` at the stack and runs the DAG with the reference's quick
settings (100 images, 5 workers, no automated labeling) through ``dag.test()``. The stack labels for real
today; training, the model, batch transform and the endpoint need its object-detection algorithm, which
comes next, so the run stops after the analysis. The report files are copied into ``demo-output/``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "ground_truth_object_detection"
LAST_TASK_THE_STACK_SERVES = "analyse.analyse_labels"
ROLE_ARN = "arn:aws:iam::123456789012:role/LocalGroundTruth"


def point_at_stack() -> object:
    """Set the stack's client variables and Airflow connection in this process; return the stack config."""
    from local_aws.config import LocalAwsConfig
    from local_aws.environment import stack_variables

    config = LocalAwsConfig()
    os.environ.update(stack_variables(config))
    return config


def run_dag(conf: dict) -> str:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    if bag.import_errors:
        raise SystemExit(f"The DAG does not import: {bag.import_errors}")
    dag = bag.dags[DAG_ID].partial_subset(task_ids=[LAST_TASK_THE_STACK_SERVES], include_upstream=True)
    return str(dag.test(run_conf=conf).state)


def copy_outputs(s3: object, bucket: str, prefix: str, target: Path) -> list[Path]:
    """Copy the newest run's analysis and input files of the class into ``target``."""
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
    wanted = [k for k in keys if k.startswith(run_root + "/analysis/")]
    wanted += [f"{run_root}/{name}" for name in ("input.manifest", "instructions.template", "selection.json")]
    copied = []
    for key in wanted:
        path = target / key[len(run_root) + 1 :]
        path.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(path))
        copied.append(path)
    return copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100, help="images to label (default 100)")
    parser.add_argument("--workers", type=int, default=5, help="workers per image (default 5)")
    parser.add_argument("--class-name", default="Bird")
    parser.add_argument("--bucket", default="ground-truth-od")
    parser.add_argument("--output", type=Path, default=ROOT / "demo-output")
    args = parser.parse_args()

    config = point_at_stack()
    from local_aws.synthetic_open_images import dataset_uris

    s3 = config.boto3_client("s3")
    if args.bucket not in {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=args.bucket)
    conf = {
        "class_name": args.class_name,
        "n_images": args.images,
        "workers_per_image": args.workers,
        "bucket": args.bucket,
        "prefix": "demo",
        "role_arn": ROLE_ARN,
        **dataset_uris().as_dag_params(),
    }
    print(f"Running {DAG_ID} on the local stack up to {LAST_TASK_THE_STACK_SERVES} with:")
    print(json.dumps(conf, indent=2))
    started = time.monotonic()
    state = run_dag(conf)
    seconds = time.monotonic() - started
    print(f"\nDAG run {state} in {seconds:.0f} s")
    if state != "success":
        raise SystemExit(1)

    copied = copy_outputs(s3, args.bucket, f"demo/{args.class_name.lower().replace(' ', '-')}/", args.output)
    metrics = json.loads((args.output / "analysis" / "metrics.json").read_text())
    detection = metrics["detection_vs_reference"]
    print(
        f"\nLabeled {metrics['images']} images ({metrics['failed_images']} failed): "
        f"{metrics['boxes']['consolidated']} boxes from {metrics['boxes']['worker']} worker boxes by "
        f"{metrics['workers']} simulated workers."
    )
    print(
        f"At the reference's prices this would cost ${metrics['cost_usd']['total']:.2f} "
        f"(${metrics['cost_usd']['price_per_human_label']:.3f} per image)."
    )
    print(
        f"Against the Open Images boxes: mean image mIoU {metrics['mean_image_miou']['all']:.3f}, "
        f"AP50 {detection['ap50']:.3f}, precision {detection['precision']:.3f}, "
        f"recall {detection['recall']:.3f}."
    )
    print(f"\n{len(copied)} files in {args.output}/; open {args.output / 'analysis' / 'report.html'}")
    print("Training, batch transform and the endpoint need the stack's object-detection algorithm (next).")


if __name__ == "__main__":
    sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]
    main()
