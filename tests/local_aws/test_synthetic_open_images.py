"""The synthetic Open Images: real formats, determinism, boxes that fit the pixels, and seeding S3."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from moto.server import ThreadedMotoServer
from PIL import Image

from ground_truth_pipeline.open_images import (
    class_and_subclasses,
    load_class_descriptions,
    resolve_class,
    select_images,
)
from local_aws.config import LocalAwsConfig
from local_aws.reference_index import ReferenceIndex
from local_aws.synthetic_open_images import (
    BBOX_CSV_KEY,
    BBOX_HEADER,
    BUCKET,
    CLASS_DESCRIPTIONS_KEY,
    HIERARCHY_KEY,
    MAX_OBJECTS,
    MIDS,
    ROOT_MID,
    TOP_CLASSES,
    DatasetCounts,
    GeneratedImage,
    bbox_csv,
    class_descriptions_csv,
    dataset_uris,
    generate_image,
    generate_to_folder,
    hierarchy,
    hierarchy_json,
    iter_images,
    names_with_ancestors,
    seed,
)
from local_aws.synthetic_scenes import SHAPES, SceneObject, render_scene
from tests.local_aws.ports import free_port

SAMPLE_SEED = 3
SAMPLE_SIZE = 200
_COORDINATE = re.compile(r"^[01]\.\d{6}$")


@pytest.fixture(scope="module")
def sample() -> list[GeneratedImage]:
    return list(iter_images(SAMPLE_SIZE, seed=SAMPLE_SEED))


def _csv_rows(images: list[GeneratedImage]) -> list[list[str]]:
    return list(csv.reader(io.StringIO(bbox_csv({i.image_id: i.annotations for i in images}).decode())))


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_images(sample):
    again = list(iter_images(20, seed=SAMPLE_SEED))
    assert [i.jpeg for i in again] == [i.jpeg for i in sample[:20]]
    assert [i.annotations for i in again] == [i.annotations for i in sample[:20]]
    assert bbox_csv({i.image_id: i.annotations for i in again}) == bbox_csv(
        {i.image_id: i.annotations for i in sample[:20]}
    )
    other = list(iter_images(20, seed=SAMPLE_SEED + 1))
    assert not {i.image_id for i in other} & {i.image_id for i in again}
    assert all(a.jpeg != b.jpeg for a, b in zip(other, again, strict=True))


def test_an_image_depends_on_its_seed_and_index_only(sample):
    assert generate_image(SAMPLE_SEED, 7) == sample[7]
    assert list(iter_images(3, seed=SAMPLE_SEED)) == sample[:3]


def test_bbox_csv_has_the_real_header_and_row_format(sample):
    header, *rows = _csv_rows(sample)
    assert tuple(header) == BBOX_HEADER
    real_header = "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,"
    real_header += "IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside"
    assert ",".join(header) == real_header
    assert len(rows) == sum(len(i.annotations) for i in sample)
    for row in rows:
        assert len(row) == 13
        assert re.fullmatch(r"[0-9a-f]{16}", row[0])
        assert row[1] == "xclick"
        assert row[2] in MIDS.values()
        assert row[3] == "1"
        assert all(_COORDINATE.match(value) for value in row[4:8]), row
        assert all(flag in {"0", "1"} for flag in row[8:13]), row
        assert row[12] == "0"


def test_rows_are_grouped_and_sorted_by_image_id_and_images_without_objects_have_none(sample):
    _, *rows = _csv_rows(sample)
    ids = [row[0] for row in rows]
    assert ids == sorted(ids)
    assert set(ids) == {i.image_id for i in sample if i.annotations}
    assert any(not i.annotations for i in sample)


def test_boxes_are_normalised_and_non_empty(sample):
    for image in sample:
        for a in image.annotations:
            assert 0.0 <= a.xmin < a.xmax <= 1.0 and 0.0 <= a.ymin < a.ymax <= 1.0, (image.image_id, a)
            assert (a.xmax - a.xmin) * image.width >= 1 and (a.ymax - a.ymin) * image.height >= 1


def test_object_counts_flags_and_group_boxes_occur(sample):
    counts = [len(i.annotations) for i in sample]
    assert min(counts) == 0 and max(counts) <= MAX_OBJECTS
    assert max(counts) >= 10
    annotations = [a for i in sample for a in i.annotations]
    for flag in ("is_group_of", "is_occluded", "is_truncated", "is_depiction"):
        assert any(getattr(a, flag) for a in annotations), flag
    assert sum(a.is_depiction for a in annotations) < 0.05 * len(annotations)
    assert not any(a.is_inside for a in annotations)


def test_truncated_boxes_reach_the_border_unless_occluded_there(sample):
    truncated = [a for i in sample for a in i.annotations if a.is_truncated and not a.is_occluded]
    assert truncated
    for a in truncated:
        assert a.xmin == 0.0 or a.ymin == 0.0 or a.xmax == 1.0 or a.ymax == 1.0, a


def test_images_are_jpegs_of_varied_sizes_with_16_hex_ids(sample):
    sizes = set()
    for image in sample:
        assert re.fullmatch(r"[0-9a-f]{16}", image.image_id)
        decoded = Image.open(io.BytesIO(image.jpeg))
        assert decoded.format == "JPEG" and decoded.mode == "RGB"
        assert decoded.size == (image.width, image.height)
        assert min(decoded.size) >= 300 and max(decoded.size) <= 800
        sizes.add(decoded.size)
    assert len({i.image_id for i in sample}) == len(sample)
    assert len(sizes) > SAMPLE_SIZE // 2
    assert any(w > h for w, h in sizes) and any(w < h for w, h in sizes)


def test_box_sizes_range_from_small_to_large(sample):
    areas = [(a.xmax - a.xmin) * (a.ymax - a.ymin) for i in sample for a in i.annotations]
    assert min(areas) < 0.002 and max(areas) > 0.4


def test_hierarchy_has_the_real_shape_and_a_class_under_two_parents():
    tree = json.loads(hierarchy_json())
    assert tree == hierarchy()
    assert tree["LabelName"] == ROOT_MID and len(tree["Subcategory"]) >= 4
    parents: dict[str, list[str]] = {}

    def walk(node: dict[str, Any]) -> None:
        assert set(node) <= {"LabelName", "Subcategory"}
        assert "Subcategory" not in node or node["Subcategory"], node
        for child in node.get("Subcategory", []):
            parents.setdefault(child["LabelName"], []).append(node["LabelName"])
            walk(child)

    walk(tree)
    assert parents[MIDS["Tomato"]] == [MIDS["Fruit"], MIDS["Vegetable"]]
    assert set(parents) == set(MIDS.values())
    for top in tree["Subcategory"]:
        assert top["Subcategory"], top["LabelName"]
    birds = next(n for n in tree["Subcategory"][0]["Subcategory"] if n["LabelName"] == "/m/015p6")
    assert len(birds["Subcategory"]) >= 5


def test_class_descriptions_have_no_header_and_real_mids():
    text = class_descriptions_csv().decode()
    lines = text.splitlines()
    assert text.endswith("\n") and lines[0].startswith("/m/")
    pairs = dict(line.split(",") for line in lines)
    assert len(pairs) == len(lines) == len(MIDS)
    for mid, name in {
        "/m/015p6": "Bird",
        "/m/01f8m5": "Blue jay",
        "/m/0h23m": "Sparrow",
        "/m/09ddx": "Duck",
        "/m/0dftk": "Swan",
        "/m/09d5_": "Owl",
        "/m/09csl": "Eagle",
        "/m/0gv1x": "Parrot",
        "/m/0k4j": "Car",
        "/m/02xwb": "Fruit",
        "/m/014j1m": "Apple",
        "/m/0cyhj_": "Orange",
        "/m/09qck": "Banana",
        "/m/0jbk": "Animal",
        "/m/0bt9lr": "Dog",
        "/m/01yrx": "Cat",
    }.items():
        assert pairs[mid] == name
    assert ROOT_MID not in pairs


def test_every_drawn_class_has_a_unique_mid_and_every_leaf_is_drawn():
    assert len(set(MIDS.values())) == len(MIDS) and ROOT_MID not in MIDS.values()
    assert set(SHAPES) <= set(MIDS)
    leaves = set()

    def walk(node: dict[str, Any]) -> None:
        for child in node.get("Subcategory", []):
            walk(child)
        if "Subcategory" not in node:
            leaves.add(node["LabelName"])

    walk(hierarchy())
    assert leaves <= {MIDS[name] for name in SHAPES}


def test_names_with_ancestors_run_from_specific_to_general():
    names = names_with_ancestors()
    assert names[MIDS["Blue jay"]] == ("Blue jay", "Bird", "Animal")
    assert names[MIDS["Tomato"]] == ("Tomato", "Fruit", "Vegetable", "Food")
    assert names[MIDS["Taxi"]] == ("Taxi", "Car", "Land vehicle", "Vehicle")


def test_the_pipelines_selection_reads_the_files_and_finds_the_birds(sample):
    descriptions = load_class_descriptions(io.StringIO(class_descriptions_csv().decode()))
    bird = resolve_class("bird", descriptions)
    mids = class_and_subclasses(hierarchy(), bird.mid)
    assert mids == {
        MIDS[n] for n in ("Bird", "Blue jay", "Sparrow", "Duck", "Swan", "Owl", "Eagle", "Parrot")
    }
    text = bbox_csv({i.image_id: i.annotations for i in sample}).decode()
    selection = select_images(io.StringIO(text), mids, count=60, held_out=10)
    counts = DatasetCounts()
    for image in sample:
        counts.add(image)
    assert len(selection.labeled) == 60 and len(selection.held_out) == 10
    assert (
        len(select_images(io.StringIO(text), mids, count=1000, allow_fewer=True).labeled)
        == counts.bird_images
    )


def test_birds_are_the_main_class_by_default(sample):
    """Over half the images show a bird: the default 2,500 give 1,000 to label and plenty held out."""
    counts = DatasetCounts()
    for image in sample:
        counts.add(image)
    assert counts.bird_images >= 0.5 * SAMPLE_SIZE
    assert counts.images == SAMPLE_SIZE and counts.boxes == sum(len(i.annotations) for i in sample)
    assert set(counts.images_per_top_class) == set(TOP_CLASSES)
    assert all(count >= 0.1 * SAMPLE_SIZE for count in counts.images_per_top_class.values())
    assert counts.group_boxes == sum(a.is_group_of for i in sample for a in i.annotations)


def test_class_mix_limits_the_classes_drawn():
    images = list(iter_images(30, seed=1, class_mix={"Fruit": 2.0, "Car": 1.0}))
    labels = {a.label for i in images for a in i.annotations}
    allowed = {MIDS[n] for n in ("Apple", "Orange", "Banana", "Tomato", "Car", "Taxi")}
    assert labels <= allowed and MIDS["Car"] in labels and MIDS["Apple"] in labels


@pytest.mark.parametrize(
    ("mix", "message"),
    [
        ({"Unicorn": 1.0}, "unknown class 'Unicorn'"),
        ({"Bird": -1.0}, "weight of 'Bird'"),
        ({"Bird": float("nan")}, "weight of 'Bird'"),
        ({"Bird": 0.0}, "must not all be zero"),
    ],
)
def test_bad_class_mix_is_rejected_by_name(mix, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        next(iter_images(1, class_mix=mix))


@pytest.mark.parametrize(
    ("images", "seed_value", "message"), [(-1, 0, "images"), (2, -3, "seed"), (2.5, 0, "images")]
)
def test_bad_counts_and_seeds_are_rejected(images, seed_value, message):
    with pytest.raises(ValueError, match=message):
        next(iter_images(images, seed=seed_value))


@pytest.mark.parametrize(
    ("width", "objects", "message"),
    [
        (640, [SceneObject("Unicorn", 0.2)], "Unknown shapes 'Unicorn'"),
        (2000, [SceneObject("Owl", 0.2)], "Scene size 2000x480"),
        (640, [SceneObject("Owl", 0.2, depiction=True)] * 2, "at most one depiction"),
    ],
)
def test_bad_scenes_are_rejected(width, objects, message):
    with pytest.raises(ValueError, match=message):
        render_scene(np.random.default_rng(0), width, 480, objects)


def test_the_order_of_a_class_mix_does_not_matter():
    one = list(iter_images(5, seed=2, class_mix={"Bird": 1.0, "Dog": 2.0}))
    other = list(iter_images(5, seed=2, class_mix={"Dog": 2.0, "Bird": 1.0}))
    assert one == other


def test_boxes_fit_the_drawn_pixels():
    """Rendered with and without its objects from the same generator state, a scene differs only inside
    the boxes, and every box's edges touch changed pixels."""
    shapes = sorted(SHAPES)
    for scene_seed in range(6):
        objects = [
            SceneObject(shapes[(scene_seed * 5 + k) % len(shapes)], size, truncated=k == 3)
            for k, size in enumerate((0.5, 0.25, 0.12, 0.3, 0.08))
        ]
        objects.append(SceneObject("Sparrow", 0.35, group=True))
        scene = render_scene(np.random.default_rng(scene_seed), 640, 480, objects)
        empty = render_scene(np.random.default_rng(scene_seed), 640, 480, [])
        assert len(scene.objects) >= 4
        diff = np.abs(np.asarray(scene.image, np.int16) - np.asarray(empty.image, np.int16)).max(axis=2)
        inside = np.zeros(diff.shape, bool)
        for drawn in scene.objects:
            x0, x1 = round(drawn.xmin * 640), round(drawn.xmax * 640)
            y0, y1 = round(drawn.ymin * 480), round(drawn.ymax * 480)
            inside[max(0, y0 - 1) : y1 + 1, max(0, x0 - 1) : x1 + 1] = True
            box = diff[y0:y1, x0:x1] > 20
            for edge in (box[:2], box[-2:], box[:, :2], box[:, -2:]):
                assert edge.any(), (scene_seed, drawn)
        assert not (diff[~inside] > 40).any(), scene_seed


def test_owners_map_matches_the_boxes():
    scene = render_scene(
        np.random.default_rng(11), 500, 400, [SceneObject("Owl", 0.4), SceneObject("Car", 0.3)]
    )
    for index, drawn in enumerate(scene.objects):
        rows, cols = np.nonzero(scene.owners == index)
        assert (cols.min() / 500, (cols.max() + 1) / 500) == (drawn.xmin, drawn.xmax)
        assert (rows.min() / 400, (rows.max() + 1) / 400) == (drawn.ymin, drawn.ymax)


def test_reference_index_finds_the_boxes_by_the_image_bytes(tmp_path, sample):
    index = ReferenceIndex(tmp_path / "index.sqlite")
    assert index.add_many((i.jpeg, i.reference) for i in sample[:20]) == 20
    for image in sample[:20]:
        found = index.lookup(image.jpeg)
        assert found == image.reference
        assert [(b.label, b.xmin, b.xmax, b.ymin, b.ymax, b.is_group) for b in found.boxes] == [
            (a.label, a.xmin, a.xmax, a.ymin, a.ymax, a.is_group_of) for a in image.annotations
        ]
    assert index.lookup(sample[25].jpeg) is None


def test_generate_to_folder_mirrors_the_bucket_layout(tmp_path):
    counts = generate_to_folder(tmp_path, 12, seed=4)
    images = list(iter_images(12, seed=4))
    assert counts.images == 12
    assert sorted(p.name for p in (tmp_path / "test").iterdir()) == sorted(
        f"{i.image_id}.jpg" for i in images
    )
    assert (tmp_path / "test" / f"{images[0].image_id}.jpg").read_bytes() == images[0].jpeg
    assert (tmp_path / BBOX_CSV_KEY).read_bytes() == bbox_csv({i.image_id: i.annotations for i in images})
    assert (tmp_path / HIERARCHY_KEY).read_bytes() == hierarchy_json()
    assert (tmp_path / CLASS_DESCRIPTIONS_KEY).read_bytes() == class_descriptions_csv()


def test_dataset_uris_point_the_dag_params_at_the_bucket():
    assert dataset_uris().as_dag_params() == {
        "open_images_bbox_csv": "s3://open-images-dataset/2018_04/test/test-annotations-bbox.csv",
        "open_images_hierarchy": "s3://open-images-dataset/2018_04/bbox_labels_600_hierarchy.json",
        "open_images_class_descriptions": "s3://open-images-dataset/2018_04/class-descriptions-boxable.csv",
        "open_images_images": "s3://open-images-dataset/test/",
    }


@pytest.fixture
def moto_config(tmp_path) -> Iterator[LocalAwsConfig]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield LocalAwsConfig(data_dir=Path(tmp_path), s3_port=port)
    finally:
        server.stop()


def test_seed_fills_the_bucket_and_the_reference_index(moto_config):
    summary = seed(moto_config, images=30, seed=5)
    s3 = moto_config.boto3_client("s3")
    images = list(iter_images(30, seed=5))
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == {f"test/{i.image_id}.jpg" for i in images} | {
        BBOX_CSV_KEY,
        HIERARCHY_KEY,
        CLASS_DESCRIPTIONS_KEY,
    }
    assert s3.get_object(Bucket=BUCKET, Key=BBOX_CSV_KEY)["Body"].read() == bbox_csv(
        {i.image_id: i.annotations for i in images}
    )
    assert s3.get_object(Bucket=BUCKET, Key=HIERARCHY_KEY)["Body"].read() == hierarchy_json()
    assert s3.get_object(Bucket=BUCKET, Key=CLASS_DESCRIPTIONS_KEY)["Body"].read() == class_descriptions_csv()
    stored = s3.get_object(Bucket=BUCKET, Key=f"test/{images[4].image_id}.jpg")
    assert stored["ContentType"] == "image/jpeg"
    data = stored["Body"].read()
    assert data == images[4].jpeg

    index = ReferenceIndex(moto_config.reference_index_db)
    assert len(index) == 30 and index.lookup(data) == images[4].reference
    assert index.class_names()[MIDS["Sparrow"]] == ("Sparrow", "Bird", "Animal")

    assert summary.counts.images == 30 and summary.stale_images_deleted == 0
    assert summary.uris == dataset_uris()
    assert summary.counts.boxes == sum(len(i.annotations) for i in images)
    text = str(summary)
    assert (
        "30 images" in text and f"{summary.counts.bird_images} with a Bird" in text and BBOX_CSV_KEY in text
    )

    again = seed(moto_config, images=12, seed=5)
    assert again.stale_images_deleted == 18
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="test/")["Contents"]
    assert {o["Key"] for o in listed} == {f"test/{i.image_id}.jpg" for i in images[:12]}
    assert s3.get_object(Bucket=BUCKET, Key=f"test/{images[4].image_id}.jpg")["Body"].read() == data
