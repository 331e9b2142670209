"""Serving a trained detector: an image in, the algorithm's JSON out.

The response is AWS's: ``{"prediction": [[class_id, score, xmin, ymin, xmax, ymax], ...]}``, coordinates
normalised to [0, 1], class ids as floats (as AWS's MXNet output gives them), best score first. Detections
scoring under ``SCORE_THRESHOLD`` are left out; callers filter further (the reference notebook at 0.2).

torch keeps a pool of OpenMP threads for each thread that calls it, and an idle pool spins for a while:
predicting on other threads than the one that loaded the model (a model server's request threads, a
transform's workers) kept two pools competing, which on two cores nearly doubled the forward pass
(``bench/bench_serving.py``). So a ``Predictor`` builds its model, and runs every prediction, on one thread
of its own; ``predict`` may be called from any thread, and calls are served one at a time.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from local_aws.object_detection.artifact import read_model_artifact
from local_aws.object_detection.dataset import decode_image
from local_aws.object_detection.errors import InvalidModelArtifactError, UnsupportedContentTypeError
from local_aws.object_detection.models import ModelSpec, build_detector, pick_device
from local_aws.object_detection.training import predict_boxes

SUPPORTED_CONTENT_TYPES = ("image/jpeg", "image/png", "application/x-image")


def check_content_type(content_type: str) -> None:
    """Raise ``UnsupportedContentTypeError`` unless the algorithm reads ``content_type`` (its media type)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in SUPPORTED_CONTENT_TYPES:
        raise UnsupportedContentTypeError(
            f"content type {content_type!r} is not supported: the object-detection algorithm reads "
            f"{', '.join(SUPPORTED_CONTENT_TYPES)}"
        )


class Predictor:
    """A loaded model, on its own torch thread."""

    def __init__(
        self, model: torch.nn.Module, spec: ModelSpec, device: torch.device, torch_thread: ThreadPoolExecutor
    ) -> None:
        self.model = model.to(device).eval()
        self.spec = spec
        self.device = device
        self._torch_thread = torch_thread

    @classmethod
    def from_artifact(cls, source: bytes | Path, device: torch.device | None = None) -> Predictor:
        """The model of a ``model.tar.gz`` (its bytes or its path) written by a training job."""
        torch_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="torch")
        return torch_thread.submit(cls._load, source, device, torch_thread).result()

    @classmethod
    def _load(
        cls, source: bytes | Path, device: torch.device | None, torch_thread: ThreadPoolExecutor
    ) -> Predictor:
        artifact = read_model_artifact(source)
        model = build_detector(artifact.spec)
        try:
            model.load_state_dict(artifact.state_dict)
        except RuntimeError as error:
            raise InvalidModelArtifactError(
                f"the weights do not fit the model they describe: {error}"
            ) from None
        return cls(model, artifact.spec, device or pick_device(), torch_thread)

    def predict(self, body: bytes, content_type: str = "application/x-image") -> dict[str, Any]:
        """The prediction for one encoded image; ``InvalidImageError`` when it does not decode."""
        check_content_type(content_type)
        return self._torch_thread.submit(self._predict, body).result()

    def _predict(self, body: bytes) -> dict[str, Any]:
        image = decode_image(body, self.spec.image_shape)
        (detections,) = predict_boxes(self.model, image[None], self.device)
        order = detections.scores.argsort(kind="stable")[::-1]
        return {
            "prediction": [
                [
                    float(detections.class_ids[i]),
                    float(detections.scores[i]),
                    *map(float, detections.boxes[i]),
                ]
                for i in order
            ]
        }
