"""``GET /task-images/<token>``: a task's image from S3, for the worker its signed URL was issued to.

Only image types a browser shows as images are served (an object stored as HTML or JavaScript must not run
on the portal's origin), and only objects up to ``MAX_IMAGE_BYTES``, read no further than that.
"""

from __future__ import annotations

import math
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from local_aws.portal.context import PortalContext
from local_aws.portal.image_urls import ImageUrlRefused
from local_aws.s3_objects import split_s3_uri

MAX_IMAGE_BYTES = 50 * 1024 * 1024
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp"})
_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)


def image_type(stored_type: str, head: bytes) -> str | None:
    """The object's own content type when it is an image type, else the type its first bytes show."""
    declared = stored_type.split(";")[0].strip().lower()
    if declared in IMAGE_TYPES:
        return declared
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for signature, kind in _SIGNATURES if head.startswith(signature)), None)


def refused(message: str, status: int = 403) -> Response:
    return PlainTextResponse(message, status_code=status)


class TaskImages:
    def __init__(self, context: PortalContext) -> None:
        self.context = context

    def image(self, request: Request, body: bytes) -> Response:
        session = self.context.session(request)
        if session is None:
            return refused("Sign in to the worker portal to see task images.")
        try:
            grant = self.context.images.check(request.path_params["token"], session.worker_name)
            bucket, key = split_s3_uri(grant.s3_uri)
        except (ImageUrlRefused, ValueError) as refusal:
            return refused(str(refusal))
        try:
            found: dict[str, Any] = self.context.s3().get_object(Bucket=bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in {"NoSuchKey", "NoSuchBucket", "404"}:
                return refused(f"The image {grant.s3_uri} does not exist.", 404)
            return refused(f"The image {grant.s3_uri} could not be read.", 502)
        except BotoCoreError:
            return refused(f"The image {grant.s3_uri} could not be read.", 502)
        stream = found["Body"]
        try:
            if found.get("ContentLength", 0) > MAX_IMAGE_BYTES:
                return refused(f"The portal serves images up to {MAX_IMAGE_BYTES // 2**20} MiB.")
            data = stream.read(MAX_IMAGE_BYTES + 1)
        finally:
            stream.close()
        if len(data) > MAX_IMAGE_BYTES:
            return refused(f"The portal serves images up to {MAX_IMAGE_BYTES // 2**20} MiB.")
        kind = image_type(found.get("ContentType", ""), data[:16])
        if kind is None:
            return refused(f"{grant.s3_uri} is not an image the portal serves.", 415)
        seconds_left = max(0, math.floor(grant.expires - self.context.clock()))
        return Response(data, media_type=kind, headers={"Cache-Control": f"private, max-age={seconds_left}"})
