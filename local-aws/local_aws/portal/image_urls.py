"""Signed, short-lived URLs of task images: the portal's stand-in for ``grant_read_access``'s presigned URLs.

A token carries the S3 URI, the worker it was issued to and its expiry, with an HMAC-SHA256 over them under
the portal's secret (``<data_dir>/portal/secret``, 32 random bytes, readable by its owner only), so a worker
can neither forge a URL for another object nor use one issued to someone else, and a copied URL stops
working after ``IMAGE_URL_TTL_S``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

IMAGE_URL_TTL_S = 300
IMAGE_PATH = "/task-images/"
SECRET_BYTES = 32
_MAX_TOKEN_CHARS = 4096
_TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class ImageUrlRefused(Exception):
    """A token the portal will not serve; the message says why, in words for the worker."""


@dataclass(frozen=True)
class ImageGrant:
    s3_uri: str
    worker_name: str
    expires: int


def load_secret(path: Path) -> bytes:
    """The portal's secret, created on first use; several processes starting at once agree on one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret-")  # mode 0600
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(secrets.token_bytes(SECRET_BYTES))
                file.flush()
                os.fsync(file.fileno())
            os.link(temporary, path)  # atomic, and never over another process's secret
        except FileExistsError:
            pass
        finally:
            Path(temporary).unlink()
    secret = path.read_bytes()
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"{path} must hold {SECRET_BYTES} bytes, found {len(secret)}; delete it to renew it")
    return secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ImageUrlSigner:
    """Issues and checks the tokens of ``GET /task-images/<token>``."""

    def __init__(self, secret: bytes, clock: Callable[[], float]) -> None:
        self._secret = secret
        self._clock = clock

    def url_for(self, s3_uri: str, worker_name: str) -> str:
        expires = int(self._clock()) + IMAGE_URL_TTL_S
        payload = json.dumps([s3_uri, worker_name, expires], separators=(",", ":")).encode("utf-8")
        return f"{IMAGE_PATH}{_b64(payload)}.{_b64(self._mac(payload))}"

    def check(self, token: str, worker_name: str) -> ImageGrant:
        """What a token grants to ``worker_name`` now; ImageUrlRefused for anything else."""
        if len(token) > _MAX_TOKEN_CHARS or not _TOKEN.fullmatch(token):
            raise ImageUrlRefused("This image link is malformed.")
        payload_text, _, mac_text = token.partition(".")
        try:
            payload, mac = _unb64(payload_text), _unb64(mac_text)
        except (ValueError, binascii.Error):
            raise ImageUrlRefused("This image link is malformed.") from None
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise ImageUrlRefused("This image link was not issued by the portal.")
        s3_uri, issued_to, expires = json.loads(payload)
        if not hmac.compare_digest(issued_to.encode("utf-8"), worker_name.encode("utf-8")):
            raise ImageUrlRefused("This image link was issued to another worker.")
        if expires <= self._clock():
            raise ImageUrlRefused("This image link has expired; reload the task to get a new one.")
        return ImageGrant(s3_uri, issued_to, expires)

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()
