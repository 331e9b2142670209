"""Opaque pagination tokens: a small JSON document in URL-safe base64."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


def encode_token(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def decode_token(token: str) -> dict[str, Any] | None:
    """The state a token carries, or None for a token this service did not issue."""
    try:
        state = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, UnicodeError, ValueError):
        return None
    return state if isinstance(state, dict) else None
