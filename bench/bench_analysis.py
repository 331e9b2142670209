"""Times the whole analysis of a large labeling job's output tree, without drawing.

A format-exact output tree of 100,000 images (5 workers, 3 iterations, 30% auto-labeled) is generated into a
temporary folder (not timed). Then, timed: reading the reference boxes, the output manifest, the worker and
consolidation responses and the auto-labeling outputs from files, every metric (per-image mIoU and
confidence, group mIoU, the confidence-threshold curves, COCO detection metrics, costs per iteration), and
writing metrics.json and the per-image CSV. The baseline, measured in the same run on the same files, is the
bare cost of reading them: ``json.loads`` of every manifest line and every worker-response file, nothing
else, so the figure printed next to it is what the analysis adds to just reading its input.

Usage: ``python bench/bench_analysis.py [--images N]``. Figures are printed and written to
``bench/results/analysis.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

from ground_truth_pipeline.analysis import analyse_labeling_job  # noqa: E402
from ground_truth_pipeline.labeling_output import LabelPrices, read_output_manifest  # noqa: E402
from ground_truth_pipeline.object_store import LocalObjectStore  # noqa: E402
from ground_truth_pipeline.open_images import (  # noqa: E402
    ReferenceBox,
    SelectedImage,
    read_reference_boxes,
    selected_images_to_json_lines,
)
from ground_truth_pipeline.reports.metrics_json import metrics_json_bytes  # noqa: E402
from tests.labeling_job_tree import write_labeling_job_tree  # noqa: E402

JOB_PREFIX = "labeling/bench-job/"
REFERENCE_KEY = "reference-boxes.jsonl"
WORKERS = 5


def write_inputs(store: LocalObjectStore, n_images: int) -> None:
    """The output tree, and reference boxes: the consolidated ones jittered, as Open Images holds them."""
    write_labeling_job_tree(
        store, JOB_PREFIX, n_images=n_images, workers=WORKERS, iterations=3, auto_fraction=0.3, seed=7
    )
    manifest = read_output_manifest(store, JOB_PREFIX, "category")
    rng = np.random.default_rng(11)
    xyxy = np.clip(manifest.consolidated.xyxy + rng.normal(0, 0.02, manifest.consolidated.xyxy.shape), 0, 1)
    boxes_of: list[list[ReferenceBox]] = [[] for _ in manifest.images]
    for image, (x0, y0, x1, y1) in zip(manifest.consolidated.image.tolist(), xyxy.tolist(), strict=True):
        boxes_of[image].append(
            ReferenceBox("/m/015p6", min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1), False)
        )
    reference = [
        SelectedImage(img.image_id, tuple(boxes))
        for img, boxes in zip(manifest.images, boxes_of, strict=True)
    ]
    store.write_bytes(REFERENCE_KEY, selected_images_to_json_lines(reference).encode())


def read_only_baseline(store: LocalObjectStore) -> float:
    started = time.perf_counter()
    with store.open_text(JOB_PREFIX + "manifests/output/output.manifest") as stream:
        for line in stream:
            if line.strip():
                json.loads(line)
    for key in store.list_keys(JOB_PREFIX + "annotations/worker-response/"):
        json.loads(store.read_bytes(key))
    return time.perf_counter() - started


def full_analysis(store: LocalObjectStore) -> tuple[float, dict]:
    started = time.perf_counter()
    with store.open_text(REFERENCE_KEY) as stream:
        reference = read_reference_boxes(stream, source=REFERENCE_KEY)
    analysis = analyse_labeling_job(
        store, JOB_PREFIX, "category", reference, ["Bird"], LabelPrices(workers=WORKERS)
    )
    store.write_bytes("analysis/metrics.json", metrics_json_bytes(analysis.metrics))
    store.write_bytes("analysis/images.csv", analysis.image_table_csv())
    return time.perf_counter() - started, analysis.metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-analysis-") as folder:
        store = LocalObjectStore(folder)
        started = time.perf_counter()
        write_inputs(store, args.images)
        generation_s = time.perf_counter() - started
        files = sum(1 for _ in Path(folder).rglob("*") if _.is_file())
        baseline_s = read_only_baseline(store)
        analysis_s, metrics = full_analysis(store)

    results = {
        "benchmark": "analysis of a labeling job output tree (no drawing)",
        "images": args.images,
        "workers_per_image": WORKERS,
        "files_in_tree": files,
        "consolidated_boxes": metrics["boxes"]["consolidated"],
        "worker_boxes": metrics["boxes"]["worker"],
        "generation_seconds_not_timed_part": round(generation_s, 3),
        "baseline_read_json_seconds": round(baseline_s, 3),
        "analysis_seconds": round(analysis_s, 3),
        "analysis_over_baseline": round(analysis_s / baseline_s, 2),
        "images_per_second": round(args.images / analysis_s),
        "mean_image_miou": metrics["mean_image_miou"]["all"],
        "ap50": metrics["detection_vs_reference"]["ap50"],
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(f"Analysis of a {args.images:,}-image output tree ({files:,} files, {WORKERS} workers per image)")
    print(f"  baseline (json.loads of manifest + worker responses): {baseline_s:8.2f} s")
    print(f"  whole analysis, metrics.json and CSV written:         {analysis_s:8.2f} s")
    print(f"  analysis / baseline:                                   {analysis_s / baseline_s:8.2f}x")
    print(f"  throughput: {args.images / analysis_s:,.0f} images/s; mIoU {results['mean_image_miou']:.3f}")
    out = ROOT / "bench" / "results" / "analysis.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"  written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
