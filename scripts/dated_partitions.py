"""Date partitions of a team's own images, filled with copies of the local stack's seeded images.

The stack's simulated crowd finds an image's objects by its content, so it can label only images the stack
seeded; copies of them stand in for a team's arriving photographs (``make demo-backfill`` and the tests).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from ground_truth_pipeline.object_store import split_s3_uri
from ground_truth_pipeline.open_images import class_and_subclasses, load_class_descriptions, resolve_class
from local_aws.synthetic_open_images import dataset_uris


def partition_prefix(day: str) -> str:
    return f"incoming/dt={day}/"


def images_showing(s3: Any, classes: Sequence[str]) -> list[str]:
    """Seeded image ids that show an object of every one of ``classes`` (or of their subclasses)."""
    uris = dataset_uris()

    def read(uri: str) -> bytes:
        bucket, key = split_s3_uri(uri)
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    descriptions = load_class_descriptions(io.StringIO(read(uris.class_descriptions).decode()))
    hierarchy = json.loads(read(uris.hierarchy))
    families = [class_and_subclasses(hierarchy, resolve_class(name, descriptions).mid) for name in classes]
    shown: dict[str, set[int]] = {}
    for row in csv.DictReader(io.StringIO(read(uris.bbox_csv).decode())):
        for index, family in enumerate(families):
            if row["LabelName"] in family:
                shown.setdefault(row["ImageID"], set()).add(index)
    return sorted(image for image, found in shown.items() if len(found) == len(classes))


def fill_partitions(s3: Any, bucket: str, days: Sequence[str], images_per_day: int) -> dict[str, list[str]]:
    """Copies of seeded images showing Bird (and Vehicle, where there are enough) in each day's partition.

    Names vary as arrivals do (sub-folders, upper-case suffixes). Returns each day's image URIs in key order.
    """
    both = images_showing(s3, ("Bird", "Vehicle"))
    birds = [image for image in images_showing(s3, ("Bird",)) if image not in both]
    chosen = (both + birds)[: len(days) * images_per_day]
    if len(chosen) < len(days) * images_per_day:
        raise ValueError(
            f"The stack seeded {len(chosen)} images of birds; {len(days) * images_per_day} needed"
        )
    source_bucket, source_prefix = split_s3_uri(dataset_uris().images)
    keys: dict[str, list[str]] = {day: [] for day in days}
    for index, image in enumerate(chosen):
        day = days[index // images_per_day]
        name = f"camera-{index % 2}/{image}.jpg" if index % 3 else f"{image}.JPG"
        key = partition_prefix(day) + name
        s3.copy_object(
            Bucket=bucket, Key=key, CopySource={"Bucket": source_bucket, "Key": f"{source_prefix}{image}.jpg"}
        )
        keys[day].append(f"s3://{bucket}/{key}")
    return {day: sorted(uris) for day, uris in keys.items()}
