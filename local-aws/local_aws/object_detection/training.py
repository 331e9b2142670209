"""The training loop: epochs over the train channel, the validation mAP after each, the best model kept.

As AWS's algorithm does: the learning rate is multiplied by ``lr_scheduler_factor`` at each epoch of
``lr_scheduler_step``, counted in iterations of ``ceil(num_training_samples / mini_batch_size)`` per epoch;
for the local networks tiny-vgg (which trains from scratch) and efficientnet-lite0 (which fine-tunes from
ImageNet), the learning rate first warms up linearly from 1/25 of ``learning_rate`` over 15% of the
iterations, then follows the steps or, when ``lr_scheduler_step`` is empty (their default), a cosine from
``learning_rate`` down to 0 at the last iteration (a one-cycle schedule, which learns several times faster
from scratch than a constant rate);
the model kept is the one of the best validation mAP (the later epoch on a tie); early stopping (when on)
ends training once ``early_stopping_patience`` epochs in a row, after ``early_stopping_min_epochs``, have
not improved the best mAP by more than ``early_stopping_tolerance`` of it. Images are flipped left-right at
random; ``freeze_layer_pattern`` freezes the parameters whose torchvision names it matches (``re.match``).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torchvision.models.detection.ssd import SSD

from local_aws.object_detection.errors import ClientInputError
from local_aws.object_detection.evaluation import Detections, ImageBoxes, mean_average_precision
from local_aws.object_detection.hyperparameters import WARM_UP_COSINE_NETWORKS, Hyperparameters

SEED = 0
EVALUATION_BATCH = 32
WARM_UP_SHARE = 0.15  # of the iterations, for WARM_UP_COSINE_NETWORKS
WARM_UP_START = 1 / 25  # of learning_rate


@dataclass(frozen=True)
class DetectionData:
    """A channel in memory: images resized to the model's square input, boxes normalised."""

    images: Tensor  # uint8 (N, 3, S, S)
    boxes: list[np.ndarray]  # per image, float32 (n, 4) xmin, ymin, xmax, ymax in [0, 1]
    class_ids: list[np.ndarray]  # per image, int64 (n,), 0-based

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass(frozen=True)
class EpochReport:
    epoch: int  # 0-based, as AWS's algorithm counts
    batches: int
    validation_map: float
    cross_entropy: float  # mean classification loss of the epoch's batches
    smooth_l1: float  # mean box regression loss
    images_per_second: float
    is_best: bool


@dataclass(frozen=True)
class TrainingOutcome:
    reports: tuple[EpochReport, ...]
    best_state: dict[str, Tensor] | None  # None when no epoch finished
    stopped: bool  # should_stop ended training
    early_stopped: bool


def make_optimizer(parameters: list[torch.nn.Parameter], hp: Hyperparameters) -> torch.optim.Optimizer:
    if hp.optimizer == "sgd":
        return torch.optim.SGD(
            parameters, lr=hp.learning_rate, momentum=hp.momentum, weight_decay=hp.weight_decay
        )
    optimizers = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop, "adadelta": torch.optim.Adadelta}
    return optimizers[hp.optimizer](parameters, lr=hp.learning_rate, weight_decay=hp.weight_decay)


def freeze_layers(model: SSD, hp: Hyperparameters) -> tuple[int, int]:
    """Apply ``freeze_layer_pattern``; return (frozen, all) parameter tensor counts."""
    parameters = list(model.named_parameters())
    if hp.freeze_layer_pattern is None:
        return 0, len(parameters)
    frozen = 0
    for name, parameter in parameters:
        if hp.freeze_layer_pattern.match(name):
            parameter.requires_grad_(False)
            frozen += 1
    if frozen == len(parameters):
        raise ClientInputError(
            f"hyperparameter freeze_layer_pattern={hp.freeze_layer_pattern.pattern!r} freezes every layer "
            "of the network: nothing is left to train"
        )
    return frozen, len(parameters)


def learning_rate_at(iteration: int, hp: Hyperparameters) -> float:
    per_epoch = math.ceil(hp.num_training_samples / hp.mini_batch_size)
    steps = sum(iteration >= epoch * per_epoch for epoch in hp.lr_scheduler_step)
    stepped = hp.learning_rate * hp.lr_scheduler_factor**steps
    if hp.base_network not in WARM_UP_COSINE_NETWORKS:
        return stepped
    total = hp.epochs * per_epoch
    warm_up = max(1, round(WARM_UP_SHARE * total))
    if iteration < warm_up:
        return hp.learning_rate * (WARM_UP_START + (1 - WARM_UP_START) * iteration / warm_up)
    if hp.lr_scheduler_step:
        return stepped
    progress = min(1.0, (iteration - warm_up) / max(1, total - 1 - warm_up))
    return hp.learning_rate * 0.5 * (1.0 + math.cos(math.pi * progress))


def predict_boxes(model: SSD, images: Tensor, device: torch.device) -> list[Detections]:
    """Detections on uint8 images (N, 3, S, S), boxes normalised to [0, 1]."""
    model.eval()
    size = images.shape[-1]
    results = []
    with torch.inference_mode():
        for start in range(0, len(images), EVALUATION_BATCH):
            batch = images[start : start + EVALUATION_BATCH].to(device).float() / 255.0
            for detection in model(list(batch)):
                results.append(
                    Detections(
                        (detection["boxes"].cpu().numpy() / size).clip(0.0, 1.0),
                        detection["labels"].cpu().numpy() - 1,
                        detection["scores"].cpu().numpy(),
                    )
                )
    return results


def validation_map(model: SSD, data: DetectionData, hp: Hyperparameters, device: torch.device) -> float:
    truths = [ImageBoxes(boxes, ids) for boxes, ids in zip(data.boxes, data.class_ids, strict=True)]
    return mean_average_precision(predict_boxes(model, data.images, device), truths, hp.overlap_threshold)


class _EarlyStopping:
    def __init__(self, hp: Hyperparameters) -> None:
        self.hp = hp
        self.best: float | None = None
        self.without_improvement = 0

    def should_stop(self, epoch: int, value: float) -> bool:
        """Record epoch ``epoch``'s mAP; whether training ends here."""
        improved = (
            self.best is None
            or (self.best <= 0 and value > self.best)
            or (self.best > 0 and (value - self.best) / self.best > self.hp.early_stopping_tolerance)
        )
        if improved:
            self.best, self.without_improvement = value, 0
        else:
            self.without_improvement += 1
        return (
            self.hp.early_stopping
            and epoch + 1 >= self.hp.early_stopping_min_epochs
            and self.without_improvement >= self.hp.early_stopping_patience
        )


def train_detector(
    model: SSD,
    hp: Hyperparameters,
    train: DetectionData,
    validation: DetectionData,
    device: torch.device,
    on_epoch: Callable[[EpochReport], None],
    should_stop: Callable[[], bool],
) -> TrainingOutcome:
    """Train ``model`` (on ``device``) for ``hp.epochs`` epochs or until stopped."""
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], hp)
    stopping = _EarlyStopping(hp)
    reports: list[EpochReport] = []
    best_state: dict[str, Tensor] | None = None
    best_map = -1.0
    iteration = 0
    for epoch in range(hp.epochs):
        model.train()
        started = time.monotonic()
        losses = np.zeros(2)
        batches = 0
        order = torch.randperm(len(train), generator=generator)
        for start in range(0, len(order), hp.mini_batch_size):
            if should_stop():
                return TrainingOutcome(tuple(reports), best_state, stopped=True, early_stopped=False)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate_at(iteration, hp)
            images, targets = _batch(train, order[start : start + hp.mini_batch_size], generator, device)
            loss = model(images, targets)
            total = loss["classification"] + loss["bbox_regression"]
            if not torch.isfinite(total):
                raise ClientInputError(
                    f"training diverged at epoch {epoch}, batch {batches}: the loss is {float(total)}; "
                    f"try a lower learning_rate than {hp.learning_rate:g}"
                )
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            losses += (loss["classification"].item(), loss["bbox_regression"].item())
            batches += 1
            iteration += 1
        seconds = time.monotonic() - started
        value = validation_map(model, validation, hp, device)
        is_best = value >= best_map
        if is_best:
            best_map = value
            best_state = copy.deepcopy(model.state_dict())
        report = EpochReport(
            epoch,
            batches,
            value,
            float(losses[0] / batches),
            float(losses[1] / batches),
            len(train) / max(seconds, 1e-9),
            is_best,
        )
        reports.append(report)
        on_epoch(report)
        if stopping.should_stop(epoch, value):
            return TrainingOutcome(tuple(reports), best_state, stopped=False, early_stopped=True)
    return TrainingOutcome(tuple(reports), best_state, stopped=False, early_stopped=False)


def _batch(
    data: DetectionData, indices: Tensor, generator: torch.Generator, device: torch.device
) -> tuple[list[Tensor], list[dict[str, Tensor]]]:
    """Images of ``indices`` (flipped left-right at random) and their targets in pixels, classes from 1."""
    size = data.images.shape[-1]
    flips = torch.rand(len(indices), generator=generator) < 0.5
    images, targets = [], []
    for index, flip in zip(indices.tolist(), flips.tolist(), strict=True):
        image = data.images[index]
        boxes = torch.from_numpy(data.boxes[index]).clone()
        if flip:
            image = image.flip(-1)
            boxes[:, [0, 2]] = 1.0 - boxes[:, [2, 0]]
        images.append(image.to(device).float() / 255.0)
        targets.append(
            {
                "boxes": (boxes * size).to(device),
                "labels": torch.from_numpy(data.class_ids[index] + 1).to(device),
            }
        )
    return images, targets
