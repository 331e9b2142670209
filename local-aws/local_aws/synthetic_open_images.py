"""A seeded synthetic Open Images in the real files' formats, and ``seed``, which puts it into the stack's S3.

With no internet the DAG's Open Images selection reads this instead, unchanged. The files mirror the 2018_04
release (the one the reference notebook reads) in bucket ``open-images-dataset``:

- ``test/<ImageID>.jpg``: JPEG images, ImageIDs of 16 lowercase hex digits;
- ``2018_04/test/test-annotations-bbox.csv``: one row per box, rows grouped by ImageID and sorted by it;
  images without objects have no row, as in the real file;
- ``2018_04/bbox_labels_600_hierarchy.json``: ``{"LabelName": "/m/0bl9f", "Subcategory": [...]}`` under
  the root Entity; leaves have no ``Subcategory``; Tomato sits under both Fruit and Vegetable;
- ``2018_04/class-descriptions-boxable.csv``: ``MID,DisplayName`` lines without a header.

Classes use their real MIDs. Everything follows from ``(seed, image index)``: image *i* is the same whatever
the total, and the same seed gives the same bytes (Pillow's JPEG encoder is deterministic), so seeding
again rewrites identical objects. Every image is also recorded in the ``ReferenceIndex`` by its content,
which is how the simulated crowd finds the boxes to label.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from botocore.exceptions import ClientError

from local_aws.config import LocalAwsConfig
from local_aws.reference_index import ReferenceBox, ReferenceImage, ReferenceIndex
from local_aws.synthetic_scenes import SHAPES, SceneObject, render_scene

BUCKET = "open-images-dataset"
IMAGES_PREFIX = "test/"
BBOX_CSV_KEY = "2018_04/test/test-annotations-bbox.csv"
HIERARCHY_KEY = "2018_04/bbox_labels_600_hierarchy.json"
CLASS_DESCRIPTIONS_KEY = "2018_04/class-descriptions-boxable.csv"
BBOX_HEADER = (
    "ImageID",
    "Source",
    "LabelName",
    "Confidence",
    "XMin",
    "XMax",
    "YMin",
    "YMax",
    "IsOccluded",
    "IsTruncated",
    "IsGroupOf",
    "IsDepiction",
    "IsInside",
)
DEFAULT_IMAGES = 2500
MAX_OBJECTS = 12
JPEG_QUALITY = 88

ROOT_MID = "/m/0bl9f"  # Entity: the hierarchy's root, not itself a boxable class
MIDS: dict[str, str] = {
    "Animal": "/m/0jbk",
    "Bird": "/m/015p6",
    "Blue jay": "/m/01f8m5",
    "Sparrow": "/m/0h23m",
    "Duck": "/m/09ddx",
    "Swan": "/m/0dftk",
    "Owl": "/m/09d5_",
    "Eagle": "/m/09csl",
    "Parrot": "/m/0gv1x",
    "Carnivore": "/m/01lrl",
    "Dog": "/m/0bt9lr",
    "Cat": "/m/01yrx",
    "Vehicle": "/m/07yv9",
    "Land vehicle": "/m/01prls",
    "Car": "/m/0k4j",
    "Taxi": "/m/0pg52",
    "Truck": "/m/07r04",
    "Food": "/m/02wbm",
    "Fruit": "/m/02xwb",
    "Apple": "/m/014j1m",
    "Orange": "/m/0cyhj_",
    "Banana": "/m/09qck",
    "Tomato": "/m/07j87",
    "Vegetable": "/m/0f4s2w",
    "Carrot": "/m/0fj52s",
    "Plant": "/m/05s2s",
    "Flower": "/m/0c9ph5",
    "Rose": "/m/06m11",
    "Sunflower": "/m/0ftb8",
}
# (display name, children) below the root; a bare name is a leaf. Bird, Car and the species are boxable
# and drawn; Animal, Food and the like only group them, as in the real hierarchy.
TAXONOMY: tuple[Any, ...] = (
    (
        "Animal",
        (
            ("Bird", ("Blue jay", "Sparrow", "Duck", "Swan", "Owl", "Eagle", "Parrot")),
            ("Carnivore", ("Dog", "Cat")),
        ),
    ),
    ("Vehicle", (("Land vehicle", (("Car", ("Taxi",)), "Truck")),)),
    ("Food", (("Fruit", ("Apple", "Orange", "Banana", "Tomato")), ("Vegetable", ("Carrot", "Tomato")))),
    ("Plant", (("Flower", ("Rose", "Sunflower")),)),
)
# Weight of each class (with what is drawn below it) as the main subject of an image. The default gives
# about 1,500 of 2,500 images a Bird: 1,000 to label plus plenty held out.
DEFAULT_CLASS_MIX: dict[str, float] = {
    "Bird": 0.42,
    "Carnivore": 0.12,
    "Car": 0.12,
    "Truck": 0.05,
    "Fruit": 0.13,
    "Vegetable": 0.05,
    "Flower": 0.11,
}
_FLOCKING = ("Bird", "Fruit", "Vegetable", "Flower")  # classes whose instances come in tight groups
_UPLOAD_THREADS = 8  # botocore's default connection pool holds 10
_INDEX_BATCH = 200


def _name(node: Any) -> str:
    return node if isinstance(node, str) else node[0]


def _children(node: Any) -> tuple[Any, ...]:
    return () if isinstance(node, str) else node[1]


def _subtree(node: Any) -> Iterator[str]:
    yield _name(node)
    for child in _children(node):
        yield from _subtree(child)


def _all_nodes(nodes: Iterable[Any]) -> Iterator[Any]:
    for node in nodes:
        yield node
        yield from _all_nodes(_children(node))


def classes_under(name: str) -> frozenset[str]:
    """``name`` and every class below any of its places in the taxonomy (display names)."""
    found = {name}
    for node in _all_nodes(TAXONOMY):
        if _name(node) == name:
            found.update(_subtree(node))
    return frozenset(found)


def hierarchy() -> dict[str, Any]:
    """The class hierarchy in Open Images' JSON shape."""

    def to_json(node: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {"LabelName": MIDS[_name(node)]}
        if _children(node):
            entry["Subcategory"] = [to_json(child) for child in _children(node)]
        return entry

    return {"LabelName": ROOT_MID, "Subcategory": [to_json(node) for node in TAXONOMY]}


def hierarchy_json() -> bytes:
    return json.dumps(hierarchy()).encode()


def class_descriptions_csv() -> bytes:
    """``MID,DisplayName`` lines, no header, sorted by MID like the real file."""
    return "".join(f"{mid},{name}\n" for name, mid in sorted(MIDS.items(), key=lambda item: item[1])).encode()


def names_with_ancestors() -> dict[str, tuple[str, ...]]:
    """Per MID, its display name, then its ancestors' nearest first (for Tomato: Fruit, Vegetable, Food)."""
    by_distance: dict[str, list[tuple[int, str]]] = {}

    def visit(node: Any, path: tuple[str, ...]) -> None:
        entries = by_distance.setdefault(_name(node), [])
        entries.extend(enumerate(reversed((*path, _name(node)))))
        for child in _children(node):
            visit(child, (*path, _name(node)))

    for node in TAXONOMY:
        visit(node, ())
    return {
        MIDS[name]: tuple(dict.fromkeys(ancestor for _, ancestor in sorted(entries, key=lambda e: e[0])))
        for name, entries in by_distance.items()
    }


TOP_CLASSES = tuple(_name(node) for node in TAXONOMY)
_TOP_CLASSES_OF_MID = {
    MIDS[name]: frozenset(top for top in TOP_CLASSES if name in classes_under(top)) for name in MIDS
}
_BIRD_MIDS = frozenset(MIDS[name] for name in classes_under("Bird"))
_FLOCKING_NAMES = frozenset().union(*(classes_under(name) for name in _FLOCKING))


def _drawable(name: str) -> tuple[str, ...]:
    return tuple(sorted(c for c in classes_under(name) if c in SHAPES))


@dataclass(frozen=True)
class ClassMix:
    """Main-subject classes of images and their weights, normalised; each stands for its drawn subclasses."""

    names: tuple[str, ...]
    weights: tuple[float, ...]

    @classmethod
    def of(cls, mix: Mapping[str, float] | None) -> ClassMix:
        mix = DEFAULT_CLASS_MIX if mix is None else mix
        for name, weight in mix.items():
            if name not in MIDS:
                raise ValueError(f"class_mix: unknown class {name!r}; known: {', '.join(MIDS)}")
            if not _drawable(name):
                raise ValueError(f"class_mix: nothing is drawn for {name!r} or below it")
            if not (isinstance(weight, int | float) and math.isfinite(weight) and weight >= 0):
                raise ValueError(f"class_mix: weight of {name!r} must be a number >= 0, got {weight!r}")
        total = float(sum(mix.values()))
        if total <= 0:
            raise ValueError("class_mix: the weights must not all be zero")
        names = tuple(sorted(mix))  # the same mix in another order draws the same images
        return cls(names, tuple(mix[name] / total for name in names))

    def choose(self, rng: np.random.Generator) -> tuple[str, ...]:
        """The drawn classes of one main-subject class, picked by weight."""
        return _drawable(self.names[int(rng.choice(len(self.names), p=self.weights))])


@dataclass(frozen=True)
class Annotation:
    """One row of the bounding-box CSV (without the ImageID)."""

    label: str  # MID
    xmin: float
    xmax: float
    ymin: float
    ymax: float
    is_occluded: bool
    is_truncated: bool
    is_group_of: bool
    is_depiction: bool
    is_inside: bool = False

    def csv_row(self, image_id: str) -> list[str]:
        flags = (self.is_occluded, self.is_truncated, self.is_group_of, self.is_depiction, self.is_inside)
        coordinates = (self.xmin, self.xmax, self.ymin, self.ymax)
        return [
            image_id,
            "xclick",
            self.label,
            "1",
            *(f"{v:.6f}" for v in coordinates),
            *(str(int(f)) for f in flags),
        ]

    def reference_box(self) -> ReferenceBox:
        return ReferenceBox(
            self.label,
            self.xmin,
            self.xmax,
            self.ymin,
            self.ymax,
            is_group=self.is_group_of,
            is_occluded=self.is_occluded,
            is_truncated=self.is_truncated,
        )


@dataclass(frozen=True)
class GeneratedImage:
    image_id: str
    width: int
    height: int
    jpeg: bytes
    annotations: tuple[Annotation, ...]  # in the CSV's order

    @property
    def reference(self) -> ReferenceImage:
        boxes = tuple(annotation.reference_box() for annotation in self.annotations)
        return ReferenceImage(self.image_id, self.width, self.height, boxes)


def image_id(seed: int, index: int) -> str:
    return hashlib.sha256(f"synthetic-open-images/{seed}/{index}".encode()).hexdigest()[:16]


def generate_image(seed: int, index: int, class_mix: ClassMix | None = None) -> GeneratedImage:
    """Image ``index`` of the dataset of ``seed``: a function of these alone."""
    rng = np.random.default_rng([seed, index])
    width, height = _image_size(rng)
    objects = _plan_objects(rng, class_mix or ClassMix.of(None))
    scene = render_scene(rng, width, height, objects)
    annotations = sorted(
        (
            Annotation(
                MIDS[drawn.request.shape],
                *(round(v, 6) for v in (drawn.xmin, drawn.xmax, drawn.ymin, drawn.ymax)),
                is_occluded=drawn.is_occluded,
                is_truncated=drawn.is_truncated,
                is_group_of=drawn.request.group,
                is_depiction=drawn.request.depiction,
            )
            for drawn in scene.objects
        ),
        key=lambda a: (a.label, a.xmin, a.xmax, a.ymin, a.ymax),
    )
    buffer = io.BytesIO()
    scene.image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return GeneratedImage(image_id(seed, index), width, height, buffer.getvalue(), tuple(annotations))


def _image_size(rng: np.random.Generator) -> tuple[int, int]:
    long_side = int(rng.integers(480, 801))
    aspect = (4 / 3, 3 / 2, 16 / 9, 1.0, 5 / 4)[int(rng.integers(5))]
    short_side = max(300, round(long_side / aspect))
    return (short_side, long_side) if rng.random() < 0.25 else (long_side, short_side)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _plan_objects(rng: np.random.Generator, mix: ClassMix) -> list[SceneObject]:
    """What an image shows: none (3%), one large subject (20%), a few (60%) or a crowd of small ones (17%),
    with other classes around them, sometimes a flock or cluster (a group box) and, rarely, a picture."""
    roll = rng.random()
    if roll < 0.03:
        return []
    family = mix.choose(rng)
    main = family[int(rng.integers(len(family)))]

    def subject() -> str:
        return main if rng.random() < 0.75 else family[int(rng.integers(len(family)))]

    def truncated() -> bool:
        return bool(rng.random() < 0.12)

    if roll < 0.23:
        objects = [SceneObject(main, rng.uniform(0.4, 0.8), truncated=bool(rng.random() < 0.25))]
        extras, sizes = int(rng.random() < 0.3), (0.08, 0.25)
    elif roll < 0.83:
        count = int(rng.integers(1, 5))
        objects = [
            SceneObject(subject(), _log_uniform(rng, 0.08, 0.45), truncated=truncated()) for _ in range(count)
        ]
        extras, sizes = (int(rng.integers(1, 4)) if rng.random() < 0.45 else 0), (0.08, 0.35)
    else:
        count = int(rng.integers(3, 9))
        objects = [
            SceneObject(subject(), _log_uniform(rng, 0.06, 0.2), truncated=truncated()) for _ in range(count)
        ]
        extras, sizes = int(rng.integers(0, 5)), (0.06, 0.2)
    if roll >= 0.23 and main in _FLOCKING_NAMES and rng.random() < 0.25:
        objects.append(SceneObject(main, rng.uniform(0.25, 0.55), group=True))
    for _ in range(extras):
        others = mix.choose(rng)
        objects.append(
            SceneObject(
                others[int(rng.integers(len(others)))], _log_uniform(rng, *sizes), truncated=truncated()
            )
        )
    objects = objects[:MAX_OBJECTS]
    singles = [i for i, o in enumerate(objects) if not o.group]
    if singles and rng.random() < 0.02:
        chosen = singles[int(rng.integers(len(singles)))]
        objects[chosen] = SceneObject(objects[chosen].shape, objects[chosen].size, depiction=True)
    return objects


def iter_images(
    images: int = DEFAULT_IMAGES, *, seed: int = 0, class_mix: Mapping[str, float] | None = None
) -> Iterator[GeneratedImage]:
    """Images 0 to ``images - 1`` of the dataset, in index order.

    One process is enough (``bench/bench_seed.py`` measures it; the README gives the figures).
    """
    if not isinstance(images, int) or images < 0:
        raise ValueError(f"images must be a whole number >= 0, got {images!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
    mix = ClassMix.of(class_mix)
    for index in range(images):
        yield generate_image(seed, index, mix)


def bbox_csv(annotations: Mapping[str, Sequence[Annotation]]) -> bytes:
    """The bounding-box CSV of ImageID -> annotations: header, then rows grouped and sorted by ImageID."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(BBOX_HEADER)
    for image in sorted(annotations):
        writer.writerows(annotation.csv_row(image) for annotation in annotations[image])
    return buffer.getvalue().encode()


@dataclass
class DatasetCounts:
    images: int = 0
    boxes: int = 0
    group_boxes: int = 0
    empty_images: int = 0
    bird_images: int = 0
    images_per_top_class: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOP_CLASSES, 0))

    def add(self, image: GeneratedImage) -> None:
        labels = {annotation.label for annotation in image.annotations}
        self.images += 1
        self.boxes += len(image.annotations)
        self.group_boxes += sum(annotation.is_group_of for annotation in image.annotations)
        self.empty_images += not labels
        self.bird_images += bool(labels & _BIRD_MIDS)
        for top in set().union(*(_TOP_CLASSES_OF_MID[label] for label in labels)):
            self.images_per_top_class[top] += 1

    def __str__(self) -> str:
        tops = ", ".join(f"{name} {count}" for name, count in self.images_per_top_class.items())
        return (
            f"{self.images} images ({self.bird_images} with a Bird, {self.empty_images} without objects), "
            f"{self.boxes} boxes ({self.group_boxes} group boxes); images per top class: {tops}"
        )


@dataclass(frozen=True)
class OpenImagesUris:
    """Where the seeded files are, as the DAG's Open Images params want them."""

    bbox_csv: str
    hierarchy: str
    class_descriptions: str
    images: str

    def as_dag_params(self) -> dict[str, str]:
        return {
            "open_images_bbox_csv": self.bbox_csv,
            "open_images_hierarchy": self.hierarchy,
            "open_images_class_descriptions": self.class_descriptions,
            "open_images_images": self.images,
        }


def dataset_uris(bucket: str = BUCKET) -> OpenImagesUris:
    return OpenImagesUris(
        bbox_csv=f"s3://{bucket}/{BBOX_CSV_KEY}",
        hierarchy=f"s3://{bucket}/{HIERARCHY_KEY}",
        class_descriptions=f"s3://{bucket}/{CLASS_DESCRIPTIONS_KEY}",
        images=f"s3://{bucket}/{IMAGES_PREFIX}",
    )


def image_key(image: str) -> str:
    return f"{IMAGES_PREFIX}{image}.jpg"


def generate_to_folder(
    folder: Path,
    images: int = DEFAULT_IMAGES,
    *,
    seed: int = 0,
    class_mix: Mapping[str, float] | None = None,
) -> DatasetCounts:
    """Write the dataset under ``folder`` in the bucket's layout: ``test/<ImageID>.jpg``, ``2018_04/...``."""
    folder = Path(folder)
    (folder / IMAGES_PREFIX).mkdir(parents=True, exist_ok=True)
    counts, annotations = DatasetCounts(), {}
    for image in iter_images(images, seed=seed, class_mix=class_mix):
        (folder / image_key(image.image_id)).write_bytes(image.jpeg)
        counts.add(image)
        annotations[image.image_id] = image.annotations
    for key, data in _metadata_files(annotations).items():
        (folder / key).parent.mkdir(parents=True, exist_ok=True)
        (folder / key).write_bytes(data)
    return counts


def _metadata_files(annotations: Mapping[str, Sequence[Annotation]]) -> dict[str, bytes]:
    return {
        BBOX_CSV_KEY: bbox_csv(annotations),
        HIERARCHY_KEY: hierarchy_json(),
        CLASS_DESCRIPTIONS_KEY: class_descriptions_csv(),
    }


_CONTENT_TYPES = {
    BBOX_CSV_KEY: "text/csv",
    HIERARCHY_KEY: "application/json",
    CLASS_DESCRIPTIONS_KEY: "text/csv",
}


@dataclass(frozen=True)
class SeedSummary:
    bucket: str
    counts: DatasetCounts
    uris: OpenImagesUris
    seed: int
    stale_images_deleted: int
    seconds: float

    def __str__(self) -> str:
        lines = [
            f"Seeded s3://{self.bucket} (seed {self.seed}) in {self.seconds:.1f} s: {self.counts}",
            f"  bbox CSV:           {self.uris.bbox_csv}",
            f"  hierarchy:          {self.uris.hierarchy}",
            f"  class descriptions: {self.uris.class_descriptions}",
            f"  images:             {self.uris.images}",
        ]
        if self.stale_images_deleted:
            lines.append(f"  deleted {self.stale_images_deleted} images of an earlier, larger seeding")
        return "\n".join(lines)


def seed(
    config: LocalAwsConfig,
    *,
    images: int | None = None,
    seed: int = 0,
    class_mix: Mapping[str, float] | None = None,
) -> SeedSummary:
    """Fill bucket ``open-images-dataset`` of the stack's S3 and record every image in the reference index.

    Idempotent: the same parameters write the same bytes again. Images under ``test/`` that are not part of
    this dataset (left by an earlier seeding with more images or another seed) are deleted, so the bucket
    holds exactly what the CSV lists. The CSV and the class files are written last.
    """
    started = time.perf_counter()
    s3 = config.boto3_client("s3")
    ensure_bucket(s3, BUCKET, config.region)
    index = ReferenceIndex(config.reference_index_db)
    index.add_class_names(names_with_ancestors())
    counts, annotations = DatasetCounts(), {}
    batch: list[tuple[bytes, ReferenceImage]] = []
    with ThreadPoolExecutor(_UPLOAD_THREADS, thread_name_prefix="seed-upload") as uploads:
        pending: set[Future[Any]] = set()
        count = DEFAULT_IMAGES if images is None else images
        for image in iter_images(count, seed=seed, class_mix=class_mix):
            pending.add(
                uploads.submit(
                    s3.put_object,
                    Bucket=BUCKET,
                    Key=image_key(image.image_id),
                    Body=image.jpeg,
                    ContentType="image/jpeg",
                )
            )
            counts.add(image)
            annotations[image.image_id] = image.annotations
            batch.append((image.jpeg, image.reference))
            if len(batch) >= _INDEX_BATCH:
                index.add_many(batch)
                batch.clear()
            if len(pending) >= 4 * _UPLOAD_THREADS:
                pending = _settle(pending, FIRST_COMPLETED)
        index.add_many(batch)
        _settle(pending)
    stale = _delete_stale_images(s3, BUCKET, set(annotations))
    for key, data in _metadata_files(annotations).items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType=_CONTENT_TYPES[key])
    return SeedSummary(BUCKET, counts, dataset_uris(BUCKET), seed, stale, time.perf_counter() - started)


def _settle(pending: set[Future[Any]], return_when: str = ALL_COMPLETED) -> set[Future[Any]]:
    """Wait for uploads; an upload's error is raised here."""
    done, still_pending = wait(pending, return_when=return_when)
    for future in done:
        future.result()
    return still_pending


def ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    """Create ``bucket`` in ``region`` unless it exists; what it holds stays."""
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket", "NotFound"}:
            raise
    arguments: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        arguments["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**arguments)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise


def _delete_stale_images(s3: Any, bucket: str, keep: set[str]) -> int:
    stale = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=IMAGES_PREFIX)
        for item in page.get("Contents", [])
        if item["Key"].removeprefix(IMAGES_PREFIX).removesuffix(".jpg") not in keep
    ]
    for start in range(0, len(stale), 1000):
        chunk = stale[start : start + 1000]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True})
    return len(stale)
