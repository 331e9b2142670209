"""The record of the images labeled for one class, so that no run pays twice for one image of one class.

Date partitions alone would not be enough: a manual run over today's partition, a cleared backfill run or a
second Open Images run of the class would send the same images to people again. So each image that a run
sends to labeling is recorded under the class's prefix, one small JSON object per image named by a digest of
the image's source URI (``<prefix>/<class>/labeled-images/<digest>.json``), holding the run, its labeling job
and a state: ``claimed`` while the job runs, ``labeled`` once the job has labeled it.

A claim is a conditional write (``If-None-Match: *``): of two runs that overlap in time, exactly one creates
it, and the other skips the image. A record of the same run is its own: a retried or cleared run selects the
same images again and finds its own labeling job, so it pays nothing more. Another
run's claim is taken over only when that run cannot label the image any more: its labeling job ended Failed
or Stopped, or it was never created though the claim is older than ``STALE_CLAIM_AGE``; the takeover is
conditional on the claim's ETag (``If-Match``), so again only one run wins. Once a job ends, its labeled
images are marked ``labeled`` and the ones it could not label are released for a later run.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

log = logging.getLogger(__name__)

CLAIMED, LABELED = "claimed", "labeled"
STALE_CLAIM_AGE = timedelta(hours=1)
# Labeling job states in which a job will never label the images it was given.
ENDED_WITHOUT_LABELS = frozenset({"Failed", "Stopped"})
_PRECONDITION_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def record_key(class_root_key: str, source_uri: str) -> str:
    return f"{class_root_key}/labeled-images/{hashlib.sha256(source_uri.encode()).hexdigest()[:32]}.json"


@dataclass(frozen=True)
class ImageRecord:
    source_uri: str
    run_id: str
    labeling_job: str
    state: str
    updated_at: datetime

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "source_uri": self.source_uri,
                "run_id": self.run_id,
                "labeling_job": self.labeling_job,
                "state": self.state,
                "updated_at": self.updated_at.isoformat(),
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes, key: str) -> ImageRecord:
        try:
            record = json.loads(data)
            return cls(
                record["source_uri"],
                record["run_id"],
                record["labeling_job"],
                record["state"],
                datetime.fromisoformat(record["updated_at"]),
            )
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"The labeled-image record {key} is not one this pipeline wrote: {err}") from err


class LabeledImages:
    """The labeled-image record of one class, as seen by one run and its labeling job."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        class_root_key: str,
        run_id: str,
        labeling_job: str,
        job_status: Callable[[str], str | None],
    ) -> None:
        """``job_status`` gives a labeling job's status, ``None`` for a job that does not exist."""
        self.s3 = s3
        self.bucket = bucket
        self.class_root_key = class_root_key
        self.run_id = run_id
        self.labeling_job = labeling_job
        self.job_status = job_status

    def claim(self, source_uri: str) -> bool:
        """Whether this run may send the image to labeling; if so, the image is now claimed by this run."""
        key = record_key(self.class_root_key, source_uri)
        mine = self._record(source_uri, CLAIMED)
        if self._put(key, mine, IfNoneMatch="*"):
            return True
        found = self._read(key)
        if found is None:
            return self._put(key, mine, IfNoneMatch="*")
        record, etag = found
        if record.run_id == self.run_id:
            return True
        if record.state == LABELED or not self._abandoned(record):
            return False
        log.info("Taking over %s from run %s (%s)", source_uri, record.run_id, record.labeling_job)
        return self._put(key, mine, IfMatch=etag)

    def is_recorded(self, source_uri: str) -> bool:
        """Whether any run has claimed or labeled the image for this class."""
        return self._read(record_key(self.class_root_key, source_uri)) is not None

    def finish(self, labeled: Iterable[str], not_labeled: Iterable[str]) -> tuple[int, int]:
        """Mark this run's labeled images as labeled and release the others; the counts of each."""
        marked = released = 0
        for source_uri in labeled:
            key = record_key(self.class_root_key, source_uri)
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=self._record(source_uri, LABELED).to_json())
            marked += 1
        for source_uri in not_labeled:
            key = record_key(self.class_root_key, source_uri)
            found = self._read(key)
            if found is not None and found[0].run_id == self.run_id and found[0].state == CLAIMED:
                self.s3.delete_object(Bucket=self.bucket, Key=key)
                released += 1
        return marked, released

    def _abandoned(self, record: ImageRecord) -> bool:
        status = self.job_status(record.labeling_job)
        if status is None:
            return datetime.now(UTC) - record.updated_at > STALE_CLAIM_AGE
        return status in ENDED_WITHOUT_LABELS

    def _record(self, source_uri: str, state: str) -> ImageRecord:
        return ImageRecord(source_uri, self.run_id, self.labeling_job, state, datetime.now(UTC))

    def _put(self, key: str, record: ImageRecord, **condition: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=record.to_json(),
                ContentType="application/json",
                **condition,
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code", "") in _PRECONDITION_CODES:
                return False
            raise
        return True

    def _read(self, key: str) -> tuple[ImageRecord, str] | None:
        from botocore.exceptions import ClientError

        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code", "") in _NOT_FOUND_CODES:
                return None
            raise
        return ImageRecord.from_json(response["Body"].read(), key), response["ETag"]
