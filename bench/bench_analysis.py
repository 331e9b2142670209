"""Times the whole analysis of a large labeling job's output tree, without drawing.

The output tree is the local stack's, scaled up: its recorded job with automated labeling
(``tests/fixtures/labeling_job_trees/recorded-birds-auto``: 30 images, 5 workers, human iterations 1 and 3
to 5, a third of the images labeled by machine in iterations 4 and 5, one failed) is copied over and over,
each copy with image ids and datasetObjectIds of its own, into a tree of about 100,000 images in a temporary
folder (not timed). A copy's worker responses are files of their own; its consolidation responses and
auto-labels join the recorded files of their iteration. The files the analysis does not read (intermediate
manifests, ``threshold.json``) are left out.

Then, timed: reading the reference boxes, the output manifest, the worker and consolidation responses and
the auto-labeling outputs from files, every metric (per-image mIoU and confidence, group mIoU, the
confidence-threshold curves, COCO detection metrics, costs per iteration), and writing metrics.json and the
per-image CSV. The baseline, measured in the same run on the same files, is the bare cost of reading them:
``json.loads`` of every manifest line and every worker-response file, nothing else, so the figure printed
next to it is what the analysis adds to just reading its input.

Usage: ``python bench/bench_analysis.py [--images N]``. Figures are printed and written to
``bench/results/analysis.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import tempfile
import time
from collections.abc import Iterator
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
from tests.fixtures.recorded_trees import AUTO_JOB, RecordedTree  # noqa: E402

JOB_PREFIX = "labeling/bench-job/"
REFERENCE_KEY = "reference-boxes.jsonl"
RECORDED = RecordedTree.load(AUTO_JOB)
WORKERS = RECORDED.workers
_WORKER_RESPONSE = re.compile(r"(annotations/worker-response/iteration-[0-9]+/)([0-9]+)(/.+)")
_CONSOLIDATION_RESPONSES = "annotations/consolidated-annotation/consolidation-response/"
_AUTO_LABELS = "auto_annotator_output.txt"
_TRAINING = "training/"


def scaled_tree(tree: RecordedTree, copies: int) -> Iterator[tuple[str, bytes]]:
    """The keys (relative to the job's folder) and contents of ``copies`` copies of a recorded tree.

    Copy ``c`` of object ``i`` is object ``c * n + i`` of ``n * copies``, its image id the recorded one with
    ``c`` in its first six hex digits."""
    files = tree.files()
    n = len(tree.source_refs)
    ids = tree.image_ids

    lines = files["manifests/output/output.manifest"].decode().splitlines(keepends=True)
    manifest = [
        line.replace(f"/{image_id}.jpg", f"/{copy:06x}{image_id[6:]}.jpg")
        for copy in range(copies)
        for line, image_id in zip(lines, ids, strict=True)
    ]
    yield "manifests/output/output.manifest", "".join(manifest).encode()
    for key, data in files.items():
        if match := _WORKER_RESPONSE.fullmatch(key):
            for copy in range(copies):
                yield f"{match[1]}{copy * n + int(match[2])}{match[3]}", data
        elif key.startswith(_CONSOLIDATION_RESPONSES):
            entries = json.loads(data)
            scaled = [
                entry | {"datasetObjectId": str(copy * n + int(entry["datasetObjectId"]))}
                for copy in range(copies)
                for entry in entries
            ]
            yield key, json.dumps(scaled).encode()
        elif key.endswith(_AUTO_LABELS):
            tokens_and_labels = [line.split(" ", 1) for line in data.decode().splitlines(keepends=True)]
            auto = [
                f"{copy * n + int(token)} {label}"
                for copy in range(copies)
                for token, label in tokens_and_labels
            ]
            yield key, "".join(auto).encode()
        elif key.startswith(_TRAINING):
            yield key, data


def write_inputs(store: LocalObjectStore, n_images: int) -> int:
    """The scaled tree, and reference boxes: the consolidated ones jittered, as Open Images holds them.
    Returns the number of images, the nearest multiple of the recording's."""
    copies = max(1, round(n_images / len(RECORDED.source_refs)))
    for key, data in scaled_tree(RECORDED, copies):
        store.write_bytes(JOB_PREFIX + key, data)
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
    return len(manifest.images)


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
        images = write_inputs(store, args.images)
        generation_s = time.perf_counter() - started
        files = sum(1 for _ in Path(folder).rglob("*") if _.is_file())
        baseline_s = read_only_baseline(store)
        analysis_s, metrics = full_analysis(store)

    results = {
        "benchmark": "analysis of a labeling job output tree (no drawing)",
        "images": images,
        "scaled_from": f"{AUTO_JOB} x {images // len(RECORDED.source_refs)}",
        "workers_per_image": WORKERS,
        "files_in_tree": files,
        "consolidated_boxes": metrics["boxes"]["consolidated"],
        "worker_boxes": metrics["boxes"]["worker"],
        "generation_seconds_not_timed_part": round(generation_s, 3),
        "baseline_read_json_seconds": round(baseline_s, 3),
        "analysis_seconds": round(analysis_s, 3),
        "analysis_over_baseline": round(analysis_s / baseline_s, 2),
        "images_per_second": round(images / analysis_s),
        "mean_image_miou": metrics["mean_image_miou"]["all"],
        "ap50": metrics["detection_vs_reference"]["ap50"],
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(f"Analysis of a {images:,}-image output tree ({files:,} files, {WORKERS} workers per image)")
    print(f"  baseline (json.loads of manifest + worker responses): {baseline_s:8.2f} s")
    print(f"  whole analysis, metrics.json and CSV written:         {analysis_s:8.2f} s")
    print(f"  analysis / baseline:                                   {analysis_s / baseline_s:8.2f}x")
    print(f"  throughput: {images / analysis_s:,.0f} images/s; mIoU {results['mean_image_miou']:.3f}")
    out = ROOT / "bench" / "results" / "analysis.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"  written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
