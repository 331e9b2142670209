"""ARNs and image URIs of the built-in AWS resources a bounding-box job and the object-detection training use.

They differ by region only in the owning account, so the table ``include/ground_truth_arns.json`` holds the
accounts and this module builds the ARNs. The table lists only regions where every entry is known; the file
records where each column comes from. Set ``GROUND_TRUTH_ARNS_PATH`` to read another copy of the table
(for example where a deployment does not ship ``include/`` next to ``plugins/``).

A service that answers to one ordinary region name from this table needs no special case here.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ARNS_PATH_ENV = "GROUND_TRUTH_ARNS_PATH"
_ACCOUNT_PATTERN = re.compile(r"^\d{12}$")
_REGION_PATTERN = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


class UnsupportedRegionError(ValueError):
    """The region has no entry in the table of built-in Ground Truth resources."""

    def __init__(self, region: str, supported: list[str]) -> None:
        super().__init__(
            f"Region {region!r} is not supported for Ground Truth bounding-box jobs with this table; "
            f"supported regions: {', '.join(supported)}"
        )
        self.region = region


@dataclass(frozen=True)
class RegionAccounts:
    bounding_box_lambda_account: str
    object_detection_registry_account: str


@dataclass(frozen=True)
class RegionTable:
    auto_labeling_algorithm_account: str
    public_workteam_account: str
    regions: Mapping[str, RegionAccounts]

    def accounts(self, region: str) -> RegionAccounts:
        try:
            return self.regions[region]
        except KeyError:
            raise UnsupportedRegionError(region, sorted(self.regions)) from None


def _account(value: object, where: str) -> str:
    if not isinstance(value, str) or not _ACCOUNT_PATTERN.match(value):
        raise ValueError(f"{where} must be a 12-digit AWS account id as a string, got {value!r}")
    return value


@functools.cache
def load_region_table(path: Path) -> RegionTable:
    """Read and check the table at ``path``; errors name the file and the entry that is wrong."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"Region ARN table {path} does not exist; ship include/ with the plugins or set {ARNS_PATH_ENV}"
        ) from None
    except json.JSONDecodeError as err:
        raise ValueError(f"Region ARN table {path} is not valid JSON: {err}") from err
    regions_raw = raw.get("regions") if isinstance(raw, dict) else None
    if not isinstance(regions_raw, dict) or not regions_raw:
        raise ValueError(f"Region ARN table {path} needs a non-empty object 'regions'")
    regions: dict[str, RegionAccounts] = {}
    for region, entry in regions_raw.items():
        if not _REGION_PATTERN.match(region):
            raise ValueError(f"Region ARN table {path}: {region!r} is not an AWS region name")
        if not isinstance(entry, dict):
            raise ValueError(f"Region ARN table {path}: entry of {region} must be an object")
        regions[region] = RegionAccounts(
            bounding_box_lambda_account=_account(
                entry.get("bounding_box_lambda_account"), f"{path}: {region}.bounding_box_lambda_account"
            ),
            object_detection_registry_account=_account(
                entry.get("object_detection_registry_account"),
                f"{path}: {region}.object_detection_registry_account",
            ),
        )
    return RegionTable(
        auto_labeling_algorithm_account=_account(
            raw.get("auto_labeling_algorithm_account"), f"{path}: auto_labeling_algorithm_account"
        ),
        public_workteam_account=_account(
            raw.get("public_workteam_account"), f"{path}: public_workteam_account"
        ),
        regions=regions,
    )


def region_table_path() -> Path:
    """``$GROUND_TRUTH_ARNS_PATH`` if set, else ``include/ground_truth_arns.json`` beside ``plugins/``."""
    override = os.environ.get(ARNS_PATH_ENV)
    if override:
        return Path(override)
    return Path(__file__).parents[2] / "include" / "ground_truth_arns.json"


def _table() -> RegionTable:
    return load_region_table(region_table_path())


def _table_listing(region: str) -> RegionTable:
    """The table, after checking that it lists ``region``."""
    table = _table()
    table.accounts(region)
    return table


def supported_regions() -> list[str]:
    return sorted(_table().regions)


def pre_human_task_lambda_arn(region: str) -> str:
    account = _table().accounts(region).bounding_box_lambda_account
    return f"arn:aws:lambda:{region}:{account}:function:PRE-BoundingBox"


def consolidation_lambda_arn(region: str) -> str:
    account = _table().accounts(region).bounding_box_lambda_account
    return f"arn:aws:lambda:{region}:{account}:function:ACS-BoundingBox"


def auto_labeling_algorithm_arn(region: str) -> str:
    table = _table_listing(region)
    return (
        f"arn:aws:sagemaker:{region}:{table.auto_labeling_algorithm_account}"
        ":labeling-job-algorithm-specification/object-detection"
    )


def public_workteam_arn(region: str) -> str:
    table = _table_listing(region)
    return f"arn:aws:sagemaker:{region}:{table.public_workteam_account}:workteam/public-crowd/default"


def object_detection_image_uri(region: str) -> str:
    """The built-in object-detection algorithm's image (version 1); all listed regions use amazonaws.com."""
    account = _table().accounts(region).object_detection_registry_account
    return f"{account}.dkr.ecr.{region}.amazonaws.com/object-detection:1"
