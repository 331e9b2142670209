"""Benchmark: per-image mIoU and confidence, vectorised with numpy versus a plain per-box Python loop.

Both compute the same thing on the same 100,000 synthetic images (seeded): the vectorised path from
``BoxTable``s already in memory, the loop from per-image lists prepared before its clock starts. Each path
runs three times; the best wall-clock and the best CPU time are reported, CPU time being the steadier on a
loaded machine. Prints a table and writes ``bench/results/image_metrics.json``. Targets (both speed-ups) are
reported, never asserted.

Run: ``.venv/bin/python bench/bench_image_metrics.py``
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "plugins"))

from ground_truth_pipeline.boxes import BoxTable  # noqa: E402
from ground_truth_pipeline.metrics import class_blind_image_miou, image_confidence  # noqa: E402

N_IMAGES = 100_000
MAX_BOXES = 12
SEED = 20240601
RUNS = 3
TARGET_SPEEDUP = 10.0
TARGET_VECTORISED_SECONDS = 1.0
RESULTS = REPO / "bench" / "results" / "image_metrics.json"

Box = tuple[float, float, float, float]
Metrics = tuple[np.ndarray, np.ndarray]  # per-image mIoU, per-image confidence


def random_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` normalised xyxy boxes from a few percent to most of the image wide, like Open Images objects."""
    size = np.clip(rng.lognormal(np.log(0.2), 0.6, (n, 2)), 0.02, 0.9)
    corner = rng.random((n, 2)) * (1 - size)
    return np.concatenate([corner, corner + size], axis=1)


def synthetic_dataset(rng: np.random.Generator) -> tuple[BoxTable, BoxTable]:
    """0-12 reference and 0-12 consolidated boxes per image; the first consolidated boxes jitter references.

    Scores are uniform. Rows are in image order, as the manifest and annotation readers produce them.
    """
    n_reference = rng.integers(0, MAX_BOXES + 1, N_IMAGES)
    n_consolidated = rng.integers(0, MAX_BOXES + 1, N_IMAGES)
    reference_image = np.repeat(np.arange(N_IMAGES), n_reference)
    reference_xyxy = random_boxes(rng, len(reference_image))
    reference_start = np.cumsum(n_reference) - n_reference

    consolidated_image = np.repeat(np.arange(N_IMAGES), n_consolidated)
    slot = np.arange(len(consolidated_image)) - np.repeat(
        np.cumsum(n_consolidated) - n_consolidated, n_consolidated
    )
    copies_reference = slot < n_reference[consolidated_image]
    copied = reference_xyxy[reference_start[consolidated_image[copies_reference]] + slot[copies_reference]]
    span = np.tile(copied[:, 2:] - copied[:, :2], 2)
    consolidated_xyxy = np.empty((len(consolidated_image), 4))
    consolidated_xyxy[copies_reference] = np.clip(copied + rng.normal(0, 0.08, copied.shape) * span, 0, 1)
    consolidated_xyxy[~copies_reference] = random_boxes(rng, int(np.count_nonzero(~copies_reference)))
    consolidated = BoxTable.build(
        image=consolidated_image, xyxy=consolidated_xyxy, score=rng.random(len(consolidated_image))
    )
    return consolidated, BoxTable.build(image=reference_image, xyxy=reference_xyxy)


def per_image_lists(
    consolidated: BoxTable, reference: BoxTable
) -> tuple[list[list[tuple[float, Box]]], list[list[Box]]]:
    """The boxes as plain Python lists per image, in table order: the loop's input, built before timing."""
    consolidated_lists: list[list[tuple[float, Box]]] = [[] for _ in range(N_IMAGES)]
    reference_lists: list[list[Box]] = [[] for _ in range(N_IMAGES)]
    for image, box, score in zip(
        consolidated.image.tolist(), consolidated.xyxy.tolist(), consolidated.score.tolist(), strict=True
    ):
        consolidated_lists[image].append((score, tuple(box)))
    for image, box in zip(reference.image.tolist(), reference.xyxy.tolist(), strict=True):
        reference_lists[image].append(tuple(box))
    return consolidated_lists, reference_lists


def box_iou(a: Box, b: Box) -> float:
    inter_w = min(a[2], b[2]) - max(a[0], b[0])
    inter_h = min(a[3], b[3]) - max(a[1], b[1])
    if inter_w <= 0 or inter_h <= 0:
        return 0.0
    intersection = inter_w * inter_h
    return intersection / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - intersection)


def loop_metrics(
    consolidated_lists: list[list[tuple[float, Box]]], reference_lists: list[list[Box]]
) -> Metrics:
    """The same mIoU and confidence, one image and one box at a time."""
    mious = []
    confidences = []
    for consolidated, reference in zip(consolidated_lists, reference_lists, strict=True):
        confidences.append(
            sum(score for score, _ in consolidated) / len(consolidated) if consolidated else 0.0
        )
        if not consolidated and not reference:
            mious.append(1.0)
            continue
        unmatched = list(range(len(reference)))
        matched_sum = 0.0
        for _, box in sorted(consolidated, key=lambda item: -item[0]):
            best, best_iou = -1, 0.0
            for j in unmatched:
                iou = box_iou(box, reference[j])
                if iou > best_iou:
                    best, best_iou = j, iou
            if best >= 0:
                unmatched.remove(best)
                matched_sum += best_iou
        mious.append(matched_sum / (len(consolidated) + len(unmatched)))
    return np.array(mious), np.array(confidences)


def vectorised_metrics(consolidated: BoxTable, reference: BoxTable) -> Metrics:
    return class_blind_image_miou(consolidated, reference, N_IMAGES), image_confidence(consolidated, N_IMAGES)


@dataclass(frozen=True)
class Timing:
    """Best-of-``RUNS`` wall-clock and CPU seconds of one path, and each run's."""

    wall_runs: list[float]
    cpu_runs: list[float]

    @property
    def wall(self) -> float:
        return min(self.wall_runs)

    @property
    def cpu(self) -> float:
        return min(self.cpu_runs)


def timed(path: Callable[[], Metrics]) -> tuple[Metrics, Timing]:
    """Runs ``path`` ``RUNS`` times, timing each run by the wall clock and by this process's CPU time."""
    wall_runs, cpu_runs = [], []
    for _ in range(RUNS):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        result = path()
        cpu_runs.append(time.process_time() - cpu_start)
        wall_runs.append(time.perf_counter() - wall_start)
    return result, Timing(wall_runs, cpu_runs)


def met(target_met: bool) -> str:
    return "met" if target_met else "NOT met"


def main() -> None:
    consolidated, reference = synthetic_dataset(np.random.default_rng(SEED))
    consolidated_lists, reference_lists = per_image_lists(consolidated, reference)

    (vectorised_miou, vectorised_confidence), vectorised = timed(
        lambda: vectorised_metrics(consolidated, reference)
    )
    (loop_miou, loop_confidence), loop = timed(lambda: loop_metrics(consolidated_lists, reference_lists))

    wall_speedup = loop.wall / vectorised.wall
    cpu_speedup = loop.cpu / vectorised.cpu
    agree = bool(
        np.allclose(vectorised_miou, loop_miou) and np.allclose(vectorised_confidence, loop_confidence)
    )
    results = {
        "n_images": N_IMAGES,
        "n_consolidated_boxes": len(consolidated),
        "n_reference_boxes": len(reference),
        "mean_image_miou": float(vectorised_miou.mean()),
        "runs": RUNS,
        "loop_wall_seconds_runs": loop.wall_runs,
        "loop_cpu_seconds_runs": loop.cpu_runs,
        "vectorised_wall_seconds_runs": vectorised.wall_runs,
        "vectorised_cpu_seconds_runs": vectorised.cpu_runs,
        "loop_wall_seconds_best": loop.wall,
        "loop_cpu_seconds_best": loop.cpu,
        "vectorised_wall_seconds_best": vectorised.wall,
        "vectorised_cpu_seconds_best": vectorised.cpu,
        "loop_images_per_second": N_IMAGES / loop.wall,
        "vectorised_images_per_second": N_IMAGES / vectorised.wall,
        "wall_speedup": wall_speedup,
        "cpu_speedup": cpu_speedup,
        "results_agree": agree,
        "target_speedup": TARGET_SPEEDUP,
        "target_speedup_met": min(wall_speedup, cpu_speedup) >= TARGET_SPEEDUP,
        "target_vectorised_seconds": TARGET_VECTORISED_SECONDS,
        "target_vectorised_seconds_met": vectorised.wall < TARGET_VECTORISED_SECONDS,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
    }

    print(
        f"image mIoU + confidence of {N_IMAGES:,} images "
        f"({len(consolidated):,} consolidated, {len(reference):,} reference boxes), best of {RUNS}"
    )
    print(f"{'path':<22}{'wall s':>9}{'CPU s':>9}{'images/s':>13}{'wall x':>9}{'CPU x':>9}")
    for name, timing in (("per-box Python loop", loop), ("vectorised", vectorised)):
        print(
            f"{name:<22}{timing.wall:>9.3f}{timing.cpu:>9.3f}{N_IMAGES / timing.wall:>13,.0f}"
            f"{loop.wall / timing.wall:>8.1f}x{loop.cpu / timing.cpu:>8.1f}x"
        )
    print(f"results agree (np.allclose): {agree}")
    print(
        f"target speed-up >= {TARGET_SPEEDUP:.0f}x: {wall_speedup:.1f}x wall, {cpu_speedup:.1f}x CPU, "
        f"{met(results['target_speedup_met'])}"
    )
    print(
        f"target vectorised < {TARGET_VECTORISED_SECONDS:.0f} s: {vectorised.wall:.3f} s, "
        f"{met(results['target_vectorised_seconds_met'])}"
    )

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
