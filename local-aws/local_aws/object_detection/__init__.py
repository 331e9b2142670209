"""The built-in SageMaker ``object-detection`` algorithm, run locally: SSD detectors from torchvision.

``run_training`` is one training job (hyperparameters, AugmentedManifestFile channels and an image reader
in; log lines and ``model.tar.gz`` out); ``Predictor`` serves a ``model.tar.gz`` with AWS's response format.
Base networks are AWS's ``vgg-16`` and ``resnet-50`` and, as local extensions for CPUs, ``tiny-vgg`` (the CPU
network: a small VGG-style SSD trained from scratch with a warm-up and cosine learning rate) and
``mobilenet-v3`` (SSDlite), which alone accept an ``image_shape`` under 300 and have CPU-friendly defaults.
"""

from local_aws.object_detection.errors import (
    ClientInputError,
    InvalidImageError,
    InvalidModelArtifactError,
    UnsupportedContentTypeError,
)
from local_aws.object_detection.inference import SUPPORTED_CONTENT_TYPES, Predictor, check_content_type
from local_aws.object_detection.job import METRIC_NAME, TrainingResult, run_training
from local_aws.object_detection.training import EpochReport

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
