"""Serving overhead of the local stack's endpoints: InvokeEndpoint against the bare model, in one run.

The model is the object-detection algorithm's CPU network at its default ``image_shape`` (serving cost does
not depend on training, so its weights are those of a fresh network), written as a training job writes its
``model.tar.gz``. The bench starts the local stack (``python -m local_aws up``, idempotent, default
settings), uploads the artifact, creates the model, endpoint config and endpoint, and measures on the same
seeded JPEG images:

- bare: ``Predictor.predict`` in this process (decode, resize, forward pass, the algorithm's JSON), with
  the same number of torch threads as the model server;
- invoke: boto3's ``invoke_endpoint`` through the stack's runtime API to the model server process, at
  concurrency 1 and 4 (threads, each sending its share of the requests).

For each: p50 and p99 latency and throughput (requests per second). Target: InvokeEndpoint's p50 at
concurrency 1 at most 20% above the bare p50. The endpoint, its config and model are deleted at the end.
Figures are printed and written to ``bench/results/serving.json``; nothing is asserted.

Usage: ``.venv/bin/python bench/bench_serving.py [--requests N]``
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

from local_aws.config import LocalAwsConfig  # noqa: E402
from local_aws.object_detection import Predictor  # noqa: E402
from local_aws.object_detection.artifact import write_model_artifact  # noqa: E402
from local_aws.object_detection.hyperparameters import CPU_BASE_NETWORK, defaults_for  # noqa: E402
from local_aws.object_detection.models import ModelSpec, build_detector  # noqa: E402
from local_aws.synthetic_open_images import iter_images  # noqa: E402

NAME = "bench-serving"
BUCKET = "bench-serving"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/object-detection:latest"
ROLE_ARN = "arn:aws:iam::123456789012:role/Bench"
IMAGES = 20
WARM_UP = 5
CONCURRENCIES = (1, 4)
TARGET_OVERHEAD = 0.20
RESULTS = ROOT / "bench" / "results" / "serving.json"


def artifact_bytes(image_shape: int) -> bytes:
    spec = ModelSpec(CPU_BASE_NETWORK, 1, image_shape, 0.45, pretrained_backbone=False)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as directory:
        hyperparameters = {"base_network": CPU_BASE_NETWORK, "image_shape": str(image_shape)}
        path = write_model_artifact(Path(directory), spec, build_detector(spec).state_dict(), hyperparameters)
        return path.read_bytes()


def latencies(
    call: Callable[[bytes], object], bodies: Sequence[bytes], requests: int, concurrency: int
) -> dict:
    """p50/p99 latency (ms) and throughput of ``requests`` calls, ``concurrency`` at a time."""
    for body in bodies[:WARM_UP]:
        call(body)

    def timed(index: int) -> float:
        started = time.perf_counter()
        call(bodies[index % len(bodies)])
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        seconds = np.array(list(pool.map(timed, range(requests))))
    wall = time.perf_counter() - started
    return {
        "concurrency": concurrency,
        "requests": requests,
        "p50_ms": round(float(np.percentile(seconds, 50)) * 1000, 2),
        "p99_ms": round(float(np.percentile(seconds, 99)) * 1000, 2),
        "throughput_rps": round(requests / wall, 2),
    }


def deploy(config: LocalAwsConfig, artifact: bytes) -> None:
    s3, sagemaker = config.boto3_client("s3"), config.boto3_client("sagemaker")
    if BUCKET not in {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="model/model.tar.gz", Body=artifact)
    undeploy(config)
    sagemaker.create_model(
        ModelName=NAME,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/model/model.tar.gz"},
        ExecutionRoleArn=ROLE_ARN,
    )
    variant = {"VariantName": "AllTraffic", "ModelName": NAME, "InitialInstanceCount": 1}
    sagemaker.create_endpoint_config(
        EndpointConfigName=NAME, ProductionVariants=[{**variant, "InstanceType": "ml.m5.xlarge"}]
    )
    sagemaker.create_endpoint(EndpointName=NAME, EndpointConfigName=NAME)
    sagemaker.get_waiter("endpoint_in_service").wait(
        EndpointName=NAME, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
    )


def undeploy(config: LocalAwsConfig) -> None:
    sagemaker = config.boto3_client("sagemaker")
    for delete in (
        lambda: sagemaker.delete_endpoint(EndpointName=NAME),
        lambda: sagemaker.delete_endpoint_config(EndpointConfigName=NAME),
        lambda: sagemaker.delete_model(ModelName=NAME),
    ):
        try:
            delete()
        except sagemaker.exceptions.ClientError as error:
            if "Could not find" not in str(error):
                raise
    for _ in range(120):
        try:
            sagemaker.describe_endpoint(EndpointName=NAME)
        except sagemaker.exceptions.ClientError:
            return
        time.sleep(0.5)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per measurement")
    args = parser.parse_args(argv)
    image_shape = int(defaults_for(CPU_BASE_NETWORK)["image_shape"])
    bodies = [image.jpeg for image in iter_images(IMAGES, seed=0)]
    artifact = artifact_bytes(image_shape)

    up = subprocess.run([sys.executable, "-m", "local_aws", "up"], cwd=ROOT, capture_output=True, text=True)
    if up.returncode != 0:
        raise SystemExit(f"`python -m local_aws up` failed:\n{up.stdout}\n{up.stderr}")
    config = LocalAwsConfig()
    deploy(config, artifact)
    try:
        runtime = config.boto3_client("sagemaker-runtime")

        def invoke(body: bytes) -> object:
            response = runtime.invoke_endpoint(EndpointName=NAME, ContentType="image/jpeg", Body=body)
            return json.loads(response["Body"].read())

        predictor = Predictor.from_artifact(artifact)
        bare = [latencies(lambda body: predictor.predict(body, "image/jpeg"), bodies, args.requests, 1)]
        invoked = [latencies(invoke, bodies, args.requests, c) for c in CONCURRENCIES]
    finally:
        undeploy(config)

    overhead = invoked[0]["p50_ms"] / bare[0]["p50_ms"] - 1
    met = {
        f"InvokeEndpoint p50 at concurrency 1 within {TARGET_OVERHEAD:.0%} of the bare model": overhead <= 0.2
    }
    threads = torch.get_num_threads()
    print(f"Serving the {CPU_BASE_NETWORK} network at image_shape {image_shape}, {threads} threads")
    print(f"{'':26} {'concurrency':>11} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>7}")
    for title, row in [("bare model (in process)", bare[0]), *(("InvokeEndpoint", row) for row in invoked)]:
        print(
            f"{title:26} {row['concurrency']:>11} {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} "
            f"{row['throughput_rps']:>7.1f}"
        )
    print(f"overhead at p50, concurrency 1: {overhead:.1%}")
    for name, ok in met.items():
        print(f"{'MET    ' if ok else 'NOT MET'} {name}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "settings": {
                    "base_network": CPU_BASE_NETWORK,
                    "image_shape": image_shape,
                    "torch_threads": torch.get_num_threads(),
                    "images": IMAGES,
                    "warm_up": WARM_UP,
                },
                "bare": bare,
                "invoke_endpoint": invoked,
                "overhead_p50_concurrency_1": round(overhead, 4),
                "targets": met,
                "python": platform.python_version(),
                "torch": torch.__version__,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"Wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
