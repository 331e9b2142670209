"""A team's own unlabeled images: the date partition of an S3 prefix that a run's data interval selects.

The ``images_prefix`` param is a template rendered with Airflow's templating in the run's context, for
example ``s3://my-bucket/incoming/dt={{ ds }}/``. The images of a partition are its ``.jpg``, ``.jpeg`` and
``.png`` objects at any depth, in key order (S3 lists keys in UTF-8 binary order, so the order is stable).
An object with an image suffix whose first bytes are neither JPEG's nor PNG's is not an image: it is
reported and left out, never sent to workers.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

IMAGES_PREFIX_PARAM = "images_prefix"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}
_SIGNATURE_BYTES = max(len(signature) for signature in _SIGNATURES)
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_MISSING_BUCKET_CODES = frozenset({"NoSuchBucket", "404"})


@dataclass(frozen=True)
class ImagesPrefix:
    """Where a run's images arrive: ``s3://<bucket>/<prefix>``, the prefix ending in ``/`` (or empty)."""

    bucket: str
    prefix: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @classmethod
    def parse(cls, rendered: str, template: str) -> ImagesPrefix:
        """The prefix a rendered template names; a clear error naming the param and both texts otherwise."""
        where = f"The param {IMAGES_PREFIX_PARAM} {template!r} rendered to {rendered!r}"
        text = rendered.strip()
        if not text.startswith("s3://"):
            raise ValueError(f"{where}, which is not an s3://bucket/prefix/ URI")
        bucket, _, prefix = text[len("s3://") :].partition("/")
        if not _BUCKET_NAME.match(bucket) or ".." in bucket:
            raise ValueError(f"{where}, whose bucket {bucket!r} is not a valid S3 bucket name")
        if "{{" in prefix or "{%" in prefix or "//" in prefix or any(ord(c) < 32 for c in prefix):
            raise ValueError(f"{where}, whose key prefix {prefix!r} is not a usable S3 key prefix")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return cls(bucket, prefix)


def image_suffix(uri: str) -> str:
    """The suffix an image's copy in the experiment keeps: its source's, in lower case (``.png``)."""
    return PurePosixPath(uri).suffix.lower()


@dataclass(frozen=True)
class PartitionImage:
    """One image of a partition: its S3 URI and the id it gets in the experiment."""

    uri: str
    image_id: str

    @classmethod
    def of(cls, bucket: str, key: str) -> PartitionImage:
        uri = f"s3://{bucket}/{key}"
        return cls(uri, hashlib.sha256(uri.encode()).hexdigest()[:16])

    @property
    def suffix(self) -> str:
        return image_suffix(self.uri)


@dataclass(frozen=True)
class NotAnImage:
    uri: str
    reason: str


def render_images_prefix(template: str, render: Callable[[str], str]) -> ImagesPrefix:
    """Render ``template`` (with the task's ``render_template`` in a run) and parse the result."""
    try:
        rendered = render(template)
    except Exception as err:
        raise ValueError(f"The param {IMAGES_PREFIX_PARAM} {template!r} does not render: {err}") from err
    return ImagesPrefix.parse(str(rendered), template)


def task_renderer(context: Mapping[str, Any]) -> Callable[[str], str]:
    """Airflow's templating in this task's context: ``{{ ds }}``, ``{{ data_interval_start }}``, macros."""
    task = context["task"]
    return lambda template: task.render_template(template, context)


def partition_image_keys(s3: Any, where: ImagesPrefix) -> Iterator[str]:
    """Keys of the objects with an image suffix under the prefix, in key order; none for a missing prefix."""
    from botocore.exceptions import ClientError

    paginator = s3.get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=where.bucket, Prefix=where.prefix):
            for item in page.get("Contents", []):
                if item["Key"].lower().endswith(IMAGE_SUFFIXES):
                    yield item["Key"]
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code in _MISSING_BUCKET_CODES:
            raise ValueError(
                f"The param {IMAGES_PREFIX_PARAM} names {where.uri}, but the bucket {where.bucket!r} "
                "does not exist (or is not visible to this connection)"
            ) from err
        raise


def image_format(s3: Any, bucket: str, key: str) -> str | None:
    """``JPEG`` or ``PNG`` from the object's first bytes, ``None`` when they are neither."""
    head = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{_SIGNATURE_BYTES - 1}")["Body"].read()
    return next((name for signature, name in _SIGNATURES.items() if head.startswith(signature)), None)


@dataclass(frozen=True)
class PartitionChoice:
    """The images a run labels, those it holds out, the objects that are no image, and the images skipped."""

    labeled: tuple[PartitionImage, ...]
    held_out: tuple[PartitionImage, ...]
    not_images: tuple[NotAnImage, ...]
    already_labeled: int


def choose_partition_images(
    s3: Any,
    where: ImagesPrefix,
    count: int,
    held_out: int,
    claim: Callable[[str], bool],
    is_recorded: Callable[[str], bool],
) -> PartitionChoice:
    """The first ``count`` images that ``claim`` grants this run, then ``held_out`` images nobody labeled.

    ``claim`` is asked in key order, only about real images, and claims the ones it grants; held-out images
    are not claimed (they stay free for a later run to label) and skip images that any run recorded.
    """
    labeled: list[PartitionImage] = []
    kept: list[PartitionImage] = []
    not_images: list[NotAnImage] = []
    already_labeled = 0
    for key in partition_image_keys(s3, where):
        if len(labeled) >= count and len(kept) >= held_out:
            break
        image = PartitionImage.of(where.bucket, key)
        if image_format(s3, where.bucket, key) is None:
            not_images.append(NotAnImage(image.uri, "its first bytes are neither a JPEG's nor a PNG's"))
        elif len(labeled) < count:
            if claim(image.uri):
                labeled.append(image)
            else:
                already_labeled += 1
        elif not is_recorded(image.uri):
            kept.append(image)
    return PartitionChoice(tuple(labeled), tuple(kept), tuple(not_images), already_labeled)
