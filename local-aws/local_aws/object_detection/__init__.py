"""The built-in SageMaker ``object-detection`` algorithm, run locally: SSD detectors from torchvision.

``run_training`` is one training job (hyperparameters, AugmentedManifestFile channels and an image reader
in; log lines and ``model.tar.gz`` out); ``Predictor`` serves a ``model.tar.gz`` with AWS's response format.
Base networks are AWS's ``vgg-16`` and ``resnet-50`` and, as local extensions for CPUs, ``tiny-vgg`` (the CPU
network: a small VGG-style SSD trained from scratch with a warm-up and cosine learning rate), ``mobilenet-v3``
(SSDlite) and ``efficientnet-lite0`` (SSD on EfficientNet-Lite0, from the ImageNet weights an installed
package ships), which alone accept an ``image_shape`` under 300 and have CPU-friendly defaults.

The names below that need torch are imported on first use, so that the algorithm's rules
(``local_aws.object_detection.hyperparameters``, which ``python -m local_aws env`` reads) import without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from local_aws.object_detection.errors import (
    ClientInputError,
    InvalidImageError,
    InvalidModelArtifactError,
    UnsupportedContentTypeError,
)

if TYPE_CHECKING:
    from local_aws.object_detection.inference import SUPPORTED_CONTENT_TYPES, Predictor, check_content_type
    from local_aws.object_detection.job import METRIC_NAME, TrainingResult, run_training
    from local_aws.object_detection.training import EpochReport

_TORCH_MODULES = {
    "SUPPORTED_CONTENT_TYPES": "local_aws.object_detection.inference",
    "Predictor": "local_aws.object_detection.inference",
    "check_content_type": "local_aws.object_detection.inference",
    "METRIC_NAME": "local_aws.object_detection.job",
    "TrainingResult": "local_aws.object_detection.job",
    "run_training": "local_aws.object_detection.job",
    "EpochReport": "local_aws.object_detection.training",
}


def __getattr__(name: str) -> Any:
    if name not in _TORCH_MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_TORCH_MODULES[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "METRIC_NAME",
    "SUPPORTED_CONTENT_TYPES",
    "ClientInputError",
    "EpochReport",
    "InvalidImageError",
    "InvalidModelArtifactError",
    "Predictor",
    "TrainingResult",
    "UnsupportedContentTypeError",
    "check_content_type",
    "run_training",
]
