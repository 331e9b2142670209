"""The hyperparameters of the built-in object-detection algorithm, checked as SageMaker checks them.

Names, defaults and valid values are those of the SageMaker developer guide ("Object Detection
Hyperparameters"); every value arrives as a string, as in ``CreateTrainingJob``. An unknown name, a missing
required one or a value outside its documented range is a ``ClientInputError`` that names it.

Local extensions, three base networks that train on a CPU: ``base_network=tiny-vgg`` (the CPU network: a
small VGG-style SSD that learns from scratch within minutes), ``base_network=mobilenet-v3`` (SSDlite on
MobileNetV3-Large, which learns far more slowly from scratch) and ``base_network=efficientnet-lite0`` (SSD on
EfficientNet-Lite0, whose ImageNet weights ship in an installed package). For them ``image_shape`` may go
down to 64 (AWS's minimum is 300, kept for vgg-16 and resnet-50), and the hyperparameters a job leaves out
take CPU-friendly defaults instead of AWS's, which are tuned for a GPU: ``CPU_FRIENDLY_DEFAULTS`` for
tiny-vgg, ``MOBILENET_DEFAULTS`` for mobilenet-v3, ``EFFICIENTNET_DEFAULTS`` for efficientnet-lite0
(tiny-vgg has no pretrained weights, so its default is ``use_pretrained_model=0``). The final configuration
lists every value used.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from local_aws.object_detection.errors import ClientInputError

AWS_BASE_NETWORKS = ("vgg-16", "resnet-50")
CPU_BASE_NETWORK = "tiny-vgg"
MOBILENET_BASE_NETWORK = "mobilenet-v3"
EFFICIENTNET_BASE_NETWORK = "efficientnet-lite0"
# The stack's extension of the algorithm: the networks it trains beyond AWS's, and the smallest image_shape
# they take. `python -m local_aws env` tells the DAG (local_aws.environment.dag_variables).
LOCAL_BASE_NETWORKS = (CPU_BASE_NETWORK, MOBILENET_BASE_NETWORK, EFFICIENTNET_BASE_NETWORK)
# The networks whose learning rate warms up, then follows a cosine (training.learning_rate_at).
WARM_UP_COSINE_NETWORKS = (CPU_BASE_NETWORK, EFFICIENTNET_BASE_NETWORK)
LOCAL_MIN_IMAGE_SHAPE = 64
BASE_NETWORKS = (*AWS_BASE_NETWORKS, *LOCAL_BASE_NETWORKS)
OPTIMIZERS = ("sgd", "adam", "rmsprop", "adadelta")
AWS_MIN_IMAGE_SHAPE = 300
REQUIRED = ("num_classes", "num_training_samples")
# A box takes 5 label values (class, xmin, ymin, xmax, ymax) after a header of 2, as in the algorithm's
# RecordIO labels; label_width bounds the boxes an image may have.
LABEL_HEADER_WIDTH = 2
LABEL_OBJECT_WIDTH = 5

# AWS's defaults, as its "Final configuration" log line shows them.
AWS_DEFAULTS: Mapping[str, str] = MappingProxyType(
    {
        "base_network": "vgg-16",
        "use_pretrained_model": "1",
        "epochs": "30",
        "learning_rate": "0.001",
        "lr_scheduler_step": "",
        "lr_scheduler_factor": "0.1",
        "mini_batch_size": "32",
        "optimizer": "sgd",
        "momentum": "0.9",
        "weight_decay": "0.0005",
        "overlap_threshold": "0.5",
        "nms_threshold": "0.45",
        "image_shape": "300",
        "label_width": "350",
        "early_stopping": "False",
        "early_stopping_min_epochs": "10",
        "early_stopping_patience": "5",
        "early_stopping_tolerance": "0.0",
        "freeze_layer_pattern": "",
        "kv_store": "device",
    }
)
# Defaults of the CPU network tiny-vgg where a job leaves a value out, measured with bench/bench_detector.py
# (800 images of birds: held-out mAP@0.5 and training time on two CPU cores). Its empty lr_scheduler_step
# means the local warm-up and cosine schedule (see training.learning_rate_at).
CPU_FRIENDLY_DEFAULTS: Mapping[str, str] = MappingProxyType(
    {
        "use_pretrained_model": "0",
        "epochs": "32",
        "learning_rate": "0.003",
        "mini_batch_size": "8",
        "optimizer": "adam",
        "image_shape": "256",
    }
)
# Defaults of mobilenet-v3; its learning rate drops at 75% and 90% of the epochs (cpu_learning_rate_steps).
MOBILENET_DEFAULTS: Mapping[str, str] = MappingProxyType(
    {
        "epochs": "22",
        "learning_rate": "0.004",
        "mini_batch_size": "16",
        "optimizer": "adam",
        "image_shape": "256",
    }
)

# Defaults of efficientnet-lite0, which starts from the ImageNet weights of its package (AWS's default
# use_pretrained_model=1); its learning rate warms up and follows a cosine, as tiny-vgg's. Chosen for two CPU
# cores from the cost of a training step (8 images, forward and backward, best of 4 on a machine busy with
# other work: tiny-vgg 0.09 s; efficientnet-lite0 at 256 pixels 0.80 s, 0.40 s with the frozen layers
# below, at 224 pixels 0.33 s); their held-out mAP is bench/bench_detector.py's to measure:
# - image_shape 256, tiny-vgg's: the birds of the bench are small, and stride 8 keeps 32x32 anchor positions;
# - epochs 6: at about 0.4 s a step, 6 epochs of 800 images and their validation fit in 300 s;
# - mini_batch_size 8 and adam, tiny-vgg's; learning_rate 0.008, measured with bench/bench_detector.py (800
#   seeded images, 6 epochs, two cores, 2026-12-06): held-out mAP@0.5 0.25 at 0.002, 0.48 at 0.008, 0.34 at
#   0.02, in 217 to 247 s of training; tiny-vgg from scratch reached 0.79 in 359 s in the same run, so the
#   stack's demo and automated labeling keep tiny-vgg until a recipe for this network beats it;
# - EFFICIENTNET_FROZEN_LAYERS (freeze_layer_pattern) when it starts pretrained: the stem and the first three
#   stages (strides 2 to 8, the high-resolution layers, whose ImageNet filters are generic edges and textures)
#   keep their weights, which halves the cost of a step (0.80 s to 0.40 s above).
EFFICIENTNET_DEFAULTS: Mapping[str, str] = MappingProxyType(
    {
        "epochs": "6",
        "learning_rate": "0.008",
        "mini_batch_size": "8",
        "optimizer": "adam",
        "image_shape": "256",
    }
)
# freeze_layer_pattern's default for a pretrained efficientnet-lite0 (torchvision's parameter names).
EFFICIENTNET_FROZEN_LAYERS = r"backbone\.net\.(conv_stem|bn1|blocks\.[0-2])\."


@dataclass(frozen=True)
class _Rule:
    parse: Callable[[str], object]  # raises ValueError for a value outside the valid values
    valid: str  # the valid values, in words


def _integer(minimum: int) -> _Rule:
    def parse(value: str) -> int:
        if not re.fullmatch(r"\+?\d+", value.strip()) or int(value) < minimum:
            raise ValueError(value)
        return int(value)

    return _Rule(parse, "a positive integer" if minimum == 1 else f"an integer >= {minimum}")


def _number(low: float, high: float, *, low_open: bool, high_open: bool) -> _Rule:
    def parse(value: str) -> float:
        number = float(value)
        above = number > low if low_open else number >= low
        below = number < high if high_open else number <= high
        if not (math.isfinite(number) and above and below):
            raise ValueError(value)
        return number

    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    return _Rule(parse, f"a number in {interval}")


def _choice(*choices: str, parsed: Mapping[str, object] | None = None) -> _Rule:
    def parse(value: str) -> object:
        if value not in choices:
            raise ValueError(value)
        return parsed[value] if parsed else value

    return _Rule(parse, f"one of {', '.join(choices)}")


def _epochs(value: str) -> tuple[int, ...]:
    """``"10,20"`` -> (10, 20); empty: no step."""
    if not value.strip():
        return ()
    parts = [part.strip() for part in value.split(",")]
    if not all(re.fullmatch(r"\d+", part) and int(part) > 0 for part in parts):
        raise ValueError(value)
    return tuple(sorted({int(part) for part in parts}))


def _pattern(value: str) -> re.Pattern[str] | None:
    if not value:
        return None
    try:
        return re.compile(value)
    except re.error as error:
        raise ValueError(value) from error


RULES: Mapping[str, _Rule] = MappingProxyType(
    {
        "num_classes": _integer(1),
        "num_training_samples": _integer(1),
        "base_network": _choice(*BASE_NETWORKS),
        "use_pretrained_model": _choice("0", "1", parsed={"0": False, "1": True}),
        "epochs": _integer(1),
        "learning_rate": _number(0, 1, low_open=True, high_open=False),
        "lr_scheduler_step": _Rule(_epochs, 'comma-separated positive epochs such as "10,20", or empty'),
        "lr_scheduler_factor": _number(0, 1, low_open=True, high_open=True),
        "mini_batch_size": _integer(1),
        "optimizer": _choice(*OPTIMIZERS),
        "momentum": _number(0, 1, low_open=True, high_open=False),
        "weight_decay": _number(0, 1, low_open=True, high_open=True),
        "overlap_threshold": _number(0, 1, low_open=True, high_open=False),
        "nms_threshold": _number(0, 1, low_open=True, high_open=False),
        "image_shape": _integer(1),
        # A positive integer, as AWS documents it; whether the boxes of the data fit is checked against the
        # data (dataset.check_labels), as the algorithm on AWS finds out only when it reads the records.
        "label_width": _integer(1),
        "early_stopping": _choice("True", "False", parsed={"True": True, "False": False}),
        "early_stopping_min_epochs": _integer(1),
        "early_stopping_patience": _integer(1),
        "early_stopping_tolerance": _number(0, 1, low_open=False, high_open=False),
        "freeze_layer_pattern": _Rule(_pattern, "a regular expression"),
        "kv_store": _choice("device", "dist_sync", "dist_async"),
    }
)


@dataclass(frozen=True)
class Hyperparameters:
    num_classes: int
    num_training_samples: int
    base_network: str
    use_pretrained_model: bool
    epochs: int
    learning_rate: float
    lr_scheduler_step: tuple[int, ...]  # epochs after which the learning rate is multiplied by the factor
    lr_scheduler_factor: float
    mini_batch_size: int
    optimizer: str
    momentum: float  # SGD's; the other optimizers ignore it, as on AWS
    weight_decay: float
    overlap_threshold: float  # IoU at which a detection matches a box in the validation mAP
    nms_threshold: float
    image_shape: int
    label_width: int
    early_stopping: bool
    early_stopping_min_epochs: int
    early_stopping_patience: int
    early_stopping_tolerance: float
    freeze_layer_pattern: re.Pattern[str] | None
    kv_store: str
    final_configuration: Mapping[str, str]  # every value used, as strings

    @property
    def max_boxes_per_image(self) -> int:
        return max(0, (self.label_width - LABEL_HEADER_WIDTH) // LABEL_OBJECT_WIDTH)


def defaults_for(
    base_network: str, epochs: str | None = None, use_pretrained_model: str | None = None
) -> dict[str, str]:
    """The values a job of ``base_network`` (and ``epochs`` and ``use_pretrained_model``, if it gives them)
    gets for what it leaves out."""
    defaults = dict(AWS_DEFAULTS)
    if base_network == CPU_BASE_NETWORK:
        defaults.update(CPU_FRIENDLY_DEFAULTS, base_network=CPU_BASE_NETWORK)
    elif base_network == EFFICIENTNET_BASE_NETWORK:
        defaults.update(EFFICIENTNET_DEFAULTS, base_network=EFFICIENTNET_BASE_NETWORK)
        if (use_pretrained_model or defaults["use_pretrained_model"]) == "1":
            defaults["freeze_layer_pattern"] = EFFICIENTNET_FROZEN_LAYERS
    elif base_network == MOBILENET_BASE_NETWORK:
        defaults.update(MOBILENET_DEFAULTS, base_network=MOBILENET_BASE_NETWORK)
        defaults["lr_scheduler_step"] = cpu_learning_rate_steps(epochs or defaults["epochs"])
    return defaults


def cpu_learning_rate_steps(epochs: str) -> str:
    """mobilenet-v3's default schedule: the learning rate drops at 75% and at 90% of the epochs."""
    if not re.fullmatch(r"\+?\d+", epochs.strip()):
        return ""  # the check of epochs reports the value
    count = int(epochs)
    return ",".join(str(step) for step in sorted({max(1, round(share * count)) for share in (0.75, 0.9)}))


def merged_configuration(provided: Mapping[str, str]) -> dict[str, str]:
    """The defaults of the job's base network, overridden by what the job gives."""
    for name, value in provided.items():
        if not isinstance(value, str):
            raise ClientInputError(
                f"hyperparameter {name} must be given as a string, as CreateTrainingJob sends it; "
                f"got {type(value).__name__} {value!r}"
            )
    base_network = provided.get("base_network", AWS_DEFAULTS["base_network"])
    defaults = defaults_for(base_network, provided.get("epochs"), provided.get("use_pretrained_model"))
    return {**defaults, **provided}


def parse_hyperparameters(provided: Mapping[str, str]) -> Hyperparameters:
    """Check a training job's ``HyperParameters`` and fill in the defaults; ``ClientInputError`` names the
    first hyperparameter that is unknown, missing or invalid."""
    unknown = sorted(set(provided) - set(RULES))
    if unknown:
        raise ClientInputError(
            f"unknown hyperparameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"the object-detection algorithm takes {', '.join(RULES)}"
        )
    missing = [name for name in REQUIRED if name not in provided]
    if missing:
        raise ClientInputError(
            f"missing required hyperparameter{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
        )
    configuration = merged_configuration(provided)
    values: dict[str, object] = {}
    for name, rule in RULES.items():
        try:
            values[name] = rule.parse(configuration[name])
        except ValueError:
            raise ClientInputError(
                f"hyperparameter {name}={configuration[name]!r} is invalid: it must be {rule.valid}"
            ) from None
    _check_image_shape(configuration["base_network"], int(configuration["image_shape"]))
    return Hyperparameters(**values, final_configuration=MappingProxyType(configuration))


def _check_image_shape(base_network: str, image_shape: int) -> None:
    local = base_network in LOCAL_BASE_NETWORKS
    minimum = LOCAL_MIN_IMAGE_SHAPE if local else AWS_MIN_IMAGE_SHAPE
    if image_shape < minimum:
        extension = (
            ""
            if local
            else f"; smaller shapes, from {LOCAL_MIN_IMAGE_SHAPE}, are a local extension of "
            f"base_network {' and '.join(LOCAL_BASE_NETWORKS)} only"
        )
        raise ClientInputError(
            f"hyperparameter image_shape={image_shape} is invalid for base_network={base_network}: "
            f"it must be an integer >= {minimum}{extension}"
        )


def python2_dict_repr(configuration: Mapping[str, str]) -> str:
    """A configuration as AWS's algorithm logs it, a Python 2 dict repr: ``{u'epochs': u'30', ...}``.

    Readers of the "Final configuration" line written for AWS (the reference notebook's among them) expect
    the ``u`` prefixes."""
    return "{" + ", ".join(f"u{name!r}: u{value!r}" for name, value in configuration.items()) + "}"
