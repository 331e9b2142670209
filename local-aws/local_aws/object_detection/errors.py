"""Errors of the object-detection algorithm, split as SageMaker splits them: the caller's fault or not."""

from __future__ import annotations


class ClientInputError(ValueError):
    """Bad input from the caller (hyperparameters, channels, manifests, images): the job fails with
    ``failure_reason``, worded as AWS words a client error of a built-in algorithm."""

    @property
    def failure_reason(self) -> str:
        return f"ClientError: {self}"


class UnsupportedContentTypeError(ValueError):
    """An inference request in a content type the algorithm does not read."""


class InvalidImageError(ValueError):
    """An inference request whose body does not decode as an image."""


class InvalidModelArtifactError(ValueError):
    """A ``model.tar.gz`` that this implementation of the algorithm did not write or cannot read."""
