"""What a POST brings: a body read only up to a limit, urlencoded fields, and the CSRF token it repeats.

Forms are parsed here from the bounded body (no multipart parser is needed for the portal's few fields),
and a CSRF token is compared in constant time, so that neither a huge body nor a timing leaks through.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs

from starlette.requests import Request

FORM_BODY_LIMIT = 16 * 1024
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"The request is larger than {limit // 1024} KiB.")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused (BodyTooLarge) as soon as its declared or read length passes ``limit``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def form_fields(body: bytes) -> dict[str, str]:
    """An urlencoded form's fields (the first value of each); a body that is not one gives no fields."""
    try:
        fields = parse_qs(body.decode("utf-8"), max_num_fields=20)
    except ValueError:  # not UTF-8, or too many fields
        return {}
    return {name: values[0] for name, values in fields.items()}


def csrf_matches(expected: str | None, given: str | None) -> bool:
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"
