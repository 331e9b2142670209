"""Quality and cost of the local object-detection algorithm on CPU networks: from scratch and pretrained.

The local stack trains its CPU network ``base_network=tiny-vgg`` (a small VGG-style SSD, from scratch) and
``base_network=efficientnet-lite0`` (SSD on EfficientNet-Lite0, from the ImageNet weights its installed
package ships) when a job asks for them, with the defaults it documents for CPUs. This bench trains both, one
after the other in one run, as a training job would (``run_training``: the same hyperparameter checks, image
decoding, epochs, best-epoch choice and ``model.tar.gz``), without S3: the images are held in memory and the
manifests are written in the Ground Truth output format, one class (``Bird``).

Data: the seeded synthetic Open Images (seed 0), images with a Bird or a bird species in file order; the
first ``--train`` (default 800) train, the next ``--validation`` (100) are the validation channel (the
algorithm picks its best epoch on it), the next ``--test`` (200) are held out. Labels are the reference
boxes as a labeling job's workers are asked to draw them (``targets_of``: every bird box, groups included).

Measured, for each network in one run:

- the training's wall time (reading images included) and its per-epoch validation mAP;
- on the held-out images, from the trained ``model.tar.gz`` served by ``Predictor``: the algorithm's
  ``mAP@0.5`` (``validation:mAP``'s definition) and the pipeline's COCO AP50 against the reference;

and once, the quality of the labels 5 workers of the local crowd give the held-out images (consolidated), the
quality a detector trained on labels can hope to approach.

Targets, for the pretrained network: held-out mAP@0.5 >= 0.9, training in at most 300 s; tiny-vgg from
scratch is the baseline. Figures are printed and written to ``bench/results/detector.json``; nothing is
asserted.

Usage: ``.venv/bin/python bench/bench_detector.py [--train N] [--validation N] [--test N] [--epochs N]
[--base-network NAME ...] [--hyperparameter NAME=VALUE ...] [--results PATH]``; ``--base-network``
(repeatable) picks the networks, and ``--epochs`` and ``--hyperparameter`` apply to each. The training runs
on the GPU when there is one (``bench/results`` then says which).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

from ground_truth_pipeline.boxes import BoxTable  # noqa: E402
from ground_truth_pipeline.detection_metrics import detection_metrics  # noqa: E402
from local_aws.groundtruth.consolidation import consolidate  # noqa: E402
from local_aws.groundtruth.crowd import Crowd, Target, targets_of  # noqa: E402
from local_aws.object_detection import Predictor, run_training  # noqa: E402
from local_aws.object_detection.evaluation import Detections, ImageBoxes, mean_average_precision  # noqa: E402
from local_aws.object_detection.hyperparameters import (  # noqa: E402
    CPU_BASE_NETWORK,
    EFFICIENTNET_BASE_NETWORK,
    defaults_for,
)
from local_aws.synthetic_open_images import (  # noqa: E402
    MIDS,
    GeneratedImage,
    classes_under,
    iter_images,
    names_with_ancestors,
)

CLASS_NAME = "Bird"
DATASET_SEED = 0
MAX_DATASET_IMAGES = 20_000
WORKERS = 5
TASK_TIME_LIMIT_S = 300
OVERLAP_THRESHOLD = 0.5
NETWORKS = (CPU_BASE_NETWORK, EFFICIENTNET_BASE_NETWORK)  # the baseline, from scratch; the pretrained one
TARGET_NETWORK = EFFICIENTNET_BASE_NETWORK
TARGET_MAP = 0.9
TARGET_TRAINING_S = 300
RESULTS = ROOT / "bench" / "results" / "detector.json"


@dataclass(frozen=True)
class Sample:
    image: GeneratedImage
    targets: list[Target]

    @property
    def uri(self) -> str:
        return f"s3://bench-detector/images/{self.image.image_id}.jpg"

    @property
    def normalised(self) -> np.ndarray:
        scale = np.array([self.image.width, self.image.height] * 2, dtype=np.float64)
        return np.array([t.xyxy for t in self.targets], dtype=np.float64).reshape(-1, 4) / scale


def bird_samples(count: int) -> list[Sample]:
    """The first ``count`` seeded images with at least one bird box, in dataset order."""
    birds = {MIDS[name] for name in classes_under(CLASS_NAME)}
    class_names = names_with_ancestors()
    samples = []
    for image in iter_images(MAX_DATASET_IMAGES, seed=DATASET_SEED):
        if not any(annotation.label in birds for annotation in image.annotations):
            continue
        targets = targets_of(image.reference, [CLASS_NAME], class_names, image.width, image.height)
        if targets:
            samples.append(Sample(image, targets))
        if len(samples) == count:
            return samples
    raise SystemExit(f"only {len(samples)} bird images in {MAX_DATASET_IMAGES} seeded images")


def manifest_line(sample: Sample) -> dict:
    """A Ground Truth bounding-box output line for ``sample``'s targets."""
    return {
        "source-ref": sample.uri,
        "category": {
            "image_size": [{"width": sample.image.width, "height": sample.image.height, "depth": 3}],
            "annotations": [
                {
                    "class_id": 0,
                    "left": round(t.xyxy[0]),
                    "top": round(t.xyxy[1]),
                    "width": max(1, round(t.xyxy[2] - t.xyxy[0])),
                    "height": max(1, round(t.xyxy[3] - t.xyxy[1])),
                }
                for t in sample.targets
            ],
        },
    }


def quality(detections: Sequence[Detections], samples: Sequence[Sample]) -> dict[str, float]:
    """The algorithm's mAP@0.5 and the pipeline's COCO AP50 of ``detections`` on ``samples``."""
    truths = [ImageBoxes(s.normalised, np.zeros(len(s.targets), np.int64)) for s in samples]
    voc_map = mean_average_precision(detections, truths, OVERLAP_THRESHOLD)
    counts = [len(d.scores) for d in detections]
    found = BoxTable.build(
        image=np.repeat(np.arange(len(detections)), counts),
        xyxy=np.concatenate([d.boxes for d in detections]),
        score=np.concatenate([d.scores for d in detections]),
    )
    reference_counts = [len(s.targets) for s in samples]
    reference = BoxTable.build(
        image=np.repeat(np.arange(len(samples)), reference_counts),
        xyxy=np.concatenate([s.normalised for s in samples]),
        score=np.ones(sum(reference_counts)),
        is_group=np.array([t.is_group for s in samples for t in s.targets], dtype=bool),
    )
    sizes = np.array([[s.image.width, s.image.height] for s in samples], dtype=np.float64)
    return {"map50": voc_map, "coco_ap50": detection_metrics(found, reference, sizes).ap50}


def crowd_detections(samples: Sequence[Sample]) -> list[Detections]:
    """The consolidated labels of ``WORKERS`` workers of the local crowd, confidences as scores."""
    crowd = Crowd("bench-detector", "us-east-1")
    results = []
    for object_id, sample in enumerate(samples):
        size = (sample.image.width, sample.image.height)
        answers = [
            crowd.answer(worker, object_id, sample.targets, [CLASS_NAME], size, TASK_TIME_LIMIT_S).boxes
            for worker in crowd.assign(object_id, WORKERS)
        ]
        fused = consolidate(answers, *size)
        scale = np.array([size[0], size[1]] * 2, dtype=np.float64)
        boxes = np.array([c.box.xyxy for c in fused], dtype=np.float64).reshape(-1, 4) / scale
        results.append(
            Detections(boxes, np.zeros(len(fused), np.int64), np.array([c.confidence for c in fused]))
        )
    return results


def model_detections(predictor: Predictor, samples: Sequence[Sample]) -> list[Detections]:
    results = []
    for sample in samples:
        rows = np.array(predictor.predict(sample.image.jpeg, "image/jpeg")["prediction"]).reshape(-1, 6)
        results.append(Detections(rows[:, 2:6], rows[:, 0].astype(np.int64), rows[:, 1]))
    return results


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=800, help="training images")
    parser.add_argument("--validation", type=int, default=100, help="validation channel images")
    parser.add_argument("--test", type=int, default=200, help="held-out images")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: each network's)")
    parser.add_argument(
        "--base-network",
        action="append",
        default=[],
        help=f"a base_network to train (repeatable; default: {' and '.join(NETWORKS)})",
    )
    parser.add_argument(
        "--hyperparameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other hyperparameter of the algorithm (repeatable), e.g. image_shape=300",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="the JSON to write")
    args = parser.parse_args(argv)
    for item in args.hyperparameter:
        if "=" not in item:
            parser.error(f"--hyperparameter {item!r} is not NAME=VALUE")
    args.base_network = args.base_network or list(NETWORKS)
    return args


def train_and_test(
    base_network: str,
    args: argparse.Namespace,
    train: Sequence[Sample],
    validation: Sequence[Sample],
    test: Sequence[Sample],
    images: dict[str, bytes],
) -> dict:
    """Train ``base_network`` as a training job does, then measure its model on the held-out images."""
    hyperparameters = {
        "num_classes": "1",
        "num_training_samples": str(len(train)),
        "base_network": base_network,
        **dict(item.split("=", 1) for item in args.hyperparameter),
    }
    if args.epochs is not None:
        hyperparameters["epochs"] = str(args.epochs)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as output:
        result = run_training(
            hyperparameters,
            [manifest_line(s) for s in train],
            [manifest_line(s) for s in validation],
            ["source-ref", "category"],
            images.__getitem__,
            lambda line: print(line, flush=True),
            lambda: False,
            Path(output),
        )
        training_s = time.perf_counter() - started
        predictor = Predictor.from_artifact(result.model_tar_path)
        prediction_started = time.perf_counter()
        detector = quality(model_detections(predictor, test), test)
        prediction_s = time.perf_counter() - prediction_started
    return {
        "hyperparameters": hyperparameters,
        "defaults": defaults_for(base_network, hyperparameters.get("epochs")),
        "detector": detector,
        "training_s": round(training_s, 1),
        "epochs_run": result.epochs_run,
        "validation_map_per_epoch": list(result.validation_map),
        "prediction_ms_per_image": round(1000 * prediction_s / len(test), 2),
    }


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse_args(argv)
    samples = bird_samples(args.train + args.validation + args.test)
    train = samples[: args.train]
    validation = samples[args.train : args.train + args.validation]
    test = samples[args.train + args.validation :]
    images = {s.uri: s.image.jpeg for s in samples}
    networks = {
        network: train_and_test(network, args, train, validation, test, images)
        for network in args.base_network
    }
    baseline = quality(crowd_detections(test), test)
    met = {}
    if TARGET_NETWORK in networks:
        target = networks[TARGET_NETWORK]
        met = {
            f"{TARGET_NETWORK}: held-out mAP@0.5 >= {TARGET_MAP}": target["detector"]["map50"] >= TARGET_MAP,
            f"{TARGET_NETWORK}: training in at most {TARGET_TRAINING_S} s": target["training_s"]
            <= TARGET_TRAINING_S,
        }
    print(f"\nDetectors trained on {len(train)} images, tested on {len(test)} held-out images")
    print(f"{'':36} {'epochs':>6} {'training':>9} {'mAP@0.5':>8} {'COCO AP50':>10} {'ms/image':>9}")
    for network, measured in networks.items():
        pretrained = measured["hyperparameters"].get(
            "use_pretrained_model", measured["defaults"]["use_pretrained_model"]
        )
        name = f"{network} ({'pretrained' if pretrained == '1' else 'from scratch'})"
        print(
            f"{name:36} {measured['epochs_run']:6} {measured['training_s']:8.0f}s "
            f"{measured['detector']['map50']:8.4f} {measured['detector']['coco_ap50']:10.4f} "
            f"{measured['prediction_ms_per_image']:9.1f}"
        )
    label = f"{WORKERS} workers, consolidated"
    print(f"{label:36} {'':6} {'':9} {baseline['map50']:8.4f} {baseline['coco_ap50']:10.4f}")
    for network, measured in networks.items():
        per_epoch = ", ".join(f"{v:.3f}" for v in measured["validation_map_per_epoch"])
        print(f"{network} validation mAP per epoch: {per_epoch}")
    for name, ok in met.items():
        print(f"{'MET    ' if ok else 'NOT MET'} {name}")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(
        json.dumps(
            {
                "settings": {
                    "class": CLASS_NAME,
                    "dataset_seed": DATASET_SEED,
                    "images": {"train": len(train), "validation": len(validation), "test": len(test)},
                    "torch_threads": torch.get_num_threads(),
                    "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                },
                "networks": networks,
                "baseline_crowd_labels": baseline,
                "targets": met,
                "python": platform.python_version(),
                "torch": torch.__version__,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"Wrote {args.results}")


if __name__ == "__main__":
    main()
