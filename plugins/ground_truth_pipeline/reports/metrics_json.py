"""The metrics summary as strict JSON: sorted keys, indented, NaN and infinities written as null.

Python's ``json`` writes NaN as the bare token ``NaN``, which is not JSON and which most readers reject, so
values are converted first. numpy scalars and arrays, tuples and other sequences become plain JSON values;
datetimes become ISO 8601 strings, and pandas' missing time (NaT) becomes null.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import numpy as np
import pandas as pd


def to_json_value(value: Any, path: str = "metrics") -> Any:
    """A plain JSON value equal to ``value``, with non-finite floats as None; ``path`` names it in errors."""
    if value is pd.NaT:
        return None
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, np.ndarray | np.generic):
        value = value.tolist()
    if isinstance(value, date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): to_json_value(item, f"{path}[{key!r}]") for key, item in value.items()}
    if isinstance(value, Sequence):
        return [to_json_value(item, f"{path}[{position}]") for position, item in enumerate(value)]
    raise TypeError(f"{path} is a {type(value).__name__}, which JSON cannot hold")


def metrics_json_bytes(metrics: Mapping[str, Any]) -> bytes:
    document = json.dumps(to_json_value(metrics), sort_keys=True, indent=2, allow_nan=False)
    return (document + "\n").encode("utf-8")
