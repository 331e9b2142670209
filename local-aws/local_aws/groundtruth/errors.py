"""The error that ends a labeling job as Failed."""

from __future__ import annotations


class LabelingJobFailed(Exception):
    """The job cannot go on; ``reason`` is its FailureReason, worded as AWS's ("ClientError: ...")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
