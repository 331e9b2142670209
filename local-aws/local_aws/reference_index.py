"""Reference boxes of seeded images, found by the image's content.

The synthetic Open Images generator records every image it writes here, keyed by the SHA-256 of its bytes.
The simulated crowd looks images up the same way, so a copy of a seeded image anywhere in S3 (the pipeline
copies them into each experiment) is recognised, and an image that was never seeded has no reference.
Boxes carry MIDs; the class names table tells which label category names each MID answers to (its own
display name and its ancestors'), so a crowd asked to box "Bird" boxes a sparrow.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ReferenceBox:
    """A box in Open Images' convention: normalised, in the order xmin, xmax, ymin, ymax."""

    label: str  # MID
    xmin: float
    xmax: float
    ymin: float
    ymax: float
    is_group: bool = False
    is_occluded: bool = False
    is_truncated: bool = False


@dataclass(frozen=True)
class ReferenceImage:
    image_id: str
    width: int
    height: int
    boxes: tuple[ReferenceBox, ...]


def content_key(image_bytes: bytes) -> str:
    return hashlib.sha256(image_bytes).hexdigest()


class ReferenceIndex:
    """A small SQLite table, safe to open from several processes (each opens its own connection)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS images (sha256 TEXT PRIMARY KEY, image_id TEXT NOT NULL,"
                " width INTEGER NOT NULL, height INTEGER NOT NULL, boxes TEXT NOT NULL)"
            )
            db.execute("CREATE TABLE IF NOT EXISTS class_names (mid TEXT PRIMARY KEY, names TEXT NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def add_many(self, images: Iterable[tuple[bytes, ReferenceImage]]) -> int:
        """Record ``(image bytes, reference)`` pairs; an image seeded again replaces its entry."""
        rows = [
            (
                content_key(data),
                ref.image_id,
                ref.width,
                ref.height,
                json.dumps(
                    [
                        [b.label, b.xmin, b.xmax, b.ymin, b.ymax, b.is_group, b.is_occluded, b.is_truncated]
                        for b in ref.boxes
                    ]
                ),
            )
            for data, ref in images
        ]
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO images VALUES (?, ?, ?, ?, ?)", rows)
        return len(rows)

    def lookup(self, image_bytes: bytes) -> ReferenceImage | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT image_id, width, height, boxes FROM images WHERE sha256 = ?",
                (content_key(image_bytes),),
            ).fetchone()
        if row is None:
            return None
        image_id, width, height, boxes = row
        return ReferenceImage(
            image_id=image_id,
            width=width,
            height=height,
            boxes=tuple(
                ReferenceBox(label, xmin, xmax, ymin, ymax, bool(group), bool(occluded), bool(truncated))
                for label, xmin, xmax, ymin, ymax, group, occluded, truncated in json.loads(boxes)
            ),
        )

    def add_class_names(self, names: Mapping[str, Iterable[str]]) -> int:
        """Record, per MID, the display names a box of that class answers to: the class's own name and those
        of its ancestors in the class hierarchy (a sparrow is a Sparrow and a Bird). A MID recorded again
        replaces its entry."""
        rows = [(mid, json.dumps(list(dict.fromkeys(class_names)))) for mid, class_names in names.items()]
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO class_names VALUES (?, ?)", rows)
        return len(rows)

    def class_names(self) -> dict[str, tuple[str, ...]]:
        """Every recorded MID and the display names it answers to."""
        with self._connect() as db:
            rows = db.execute("SELECT mid, names FROM class_names").fetchall()
        return {mid: tuple(json.loads(names)) for mid, names in rows}

    def __len__(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM images").fetchone()[0]
