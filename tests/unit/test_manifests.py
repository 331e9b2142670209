import json
import re

import numpy as np
import pytest

from ground_truth_pipeline.manifests import (
    ManifestError,
    count_samples,
    input_manifest,
    label_attribute_of,
    manifest_bytes,
    parse_output_manifest,
    split_manifest,
)
from tests.fixtures.recorded_trees import AUTO_JOB, RecordedTree

# The output manifest line of the formats reference, on one line as Ground Truth writes it.
HUMAN_LINE = (
    '{"source-ref": "s3://b/p/images/0a1b.jpg", '
    '"category": {"image_size": [{"width": 640, "height": 480, "depth": 3}], '
    '"annotations": [{"class_id": 0, "left": 41, "top": 60, "width": 120, "height": 88}]}, '
    '"category-metadata": {"objects": [{"confidence": 0.86}], "class-map": {"0": "Bird"}, '
    '"type": "groundtruth/object-detection", "human-annotated": "yes", '
    '"creation-date": "2026-11-26T10:15:02.731125", "job-name": "labeling-job/birds-job"}}'
)
MACHINE_LINE = (
    '{"source-ref": "s3://b/p/images/ffe0.jpg", '
    '"category": {"image_size": [{"width": 1024, "height": 768, "depth": 3}], '
    '"annotations": [{"class_id": 0, "left": 0, "top": 384, "width": 512, "height": 384}, '
    '{"class_id": 1, "left": 512, "top": 0, "width": 512, "height": 768}]}, '
    '"category-metadata": {"objects": [{"confidence": 0.41}, {"confidence": 0.93}], '
    '"class-map": {"0": "Bird", "1": "Duck"}, "type": "groundtruth/object-detection", '
    '"human-annotated": "no", "creation-date": "2026-11-27T08:00:00.000001", '
    '"job-name": "labeling-job/birds-job"}}'
)
FAILED_LINE = (
    '{"source-ref": "s3://b/p/images/dead.jpg", "category-metadata": '
    '{"failure-reason": "ClientError: image too large", "job-name": "labeling-job/birds-job"}}'
)


def _line_with(**changes):
    """HUMAN_LINE with fields replaced; keys are paths joined by "__" (list items by index), None deletes."""
    obj = json.loads(HUMAN_LINE)
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = obj
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return json.dumps(obj)


def test_input_manifest_is_one_json_object_per_line_with_escaping():
    refs = ["s3://b/p/images/a.jpg", 's3://b/p/images/odd "name" ü.jpg']
    data = input_manifest(refs)
    lines = data.decode().split("\n")
    assert lines[-1] == ""
    assert [json.loads(line) for line in lines[:-1]] == [{"source-ref": ref} for ref in refs]


def test_reference_example_lines_parse_to_normalised_boxes():
    manifest = parse_output_manifest([HUMAN_LINE + "\n", MACHINE_LINE + "\n", FAILED_LINE + "\n"], "category")

    assert manifest.job_name == "birds-job"
    assert manifest.class_map == {0: "Bird", 1: "Duck"}
    human, machine, failed = manifest.images
    assert (human.object_id, human.image_id, human.width, human.height) == (0, "0a1b", 640, 480)
    assert human.human_annotated and human.failure_reason is None
    assert (machine.object_id, machine.image_id, machine.human_annotated) == (1, "ffe0", False)
    assert (failed.object_id, failed.failure_reason) == (2, "ClientError: image too large")
    assert manifest.failed_count == 1

    boxes = manifest.consolidated
    np.testing.assert_array_equal(boxes.image, [0, 1, 1])
    np.testing.assert_allclose(boxes.xyxy[0], [41 / 640, 60 / 480, 161 / 640, 148 / 480])
    np.testing.assert_allclose(boxes.xyxy[1:], [[0.0, 0.5, 0.5, 1.0], [0.5, 0.0, 1.0, 1.0]])
    np.testing.assert_allclose(boxes.score, [0.86, 0.41, 0.93])
    np.testing.assert_array_equal(boxes.class_id, [0, 0, 1])
    assert manifest.raw_lines == [HUMAN_LINE, MACHINE_LINE, FAILED_LINE]


def test_blank_lines_are_neither_objects_nor_counted_but_keep_error_line_numbers():
    manifest = parse_output_manifest(
        ["\n", HUMAN_LINE + "\n", "   \n", MACHINE_LINE + "\n", "\n"], "category"
    )
    assert [img.object_id for img in manifest.images] == [0, 1]
    assert len(manifest.raw_lines) == 2

    with pytest.raises(ManifestError, match=r"^output\.manifest line 4: not valid JSON"):
        parse_output_manifest(["\n", HUMAN_LINE, "\n", "{not json"], "category")


def test_objects_and_annotations_of_different_length_name_the_line():
    bad = _line_with(**{"category-metadata__objects": [{"confidence": 0.5}, {"confidence": 0.6}]})
    with pytest.raises(ManifestError) as raised:
        parse_output_manifest([HUMAN_LINE] * 6 + [bad], "category")
    assert str(raised.value) == (
        "output.manifest line 7: 'category-metadata.objects' has 2 entries but 'category.annotations' has 1"
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[1, 2]", "must be a JSON object, got an array"),
        (_line_with(**{"source-ref": None}), "'source-ref' is missing"),
        (_line_with(**{"source-ref": ""}), "'source-ref' must be a non-empty string, got an empty string"),
        (_line_with(**{"category-metadata": None}), "'category-metadata' is missing"),
        (_line_with(category=None), "'category' is missing and 'category-metadata' has no 'failure-reason'"),
        (_line_with(category__image_size=[]), "'category.image_size' is empty"),
        (_line_with(category__image_size__0__width=None), "'category.image_size[0].width' is missing"),
        (_line_with(category__image_size__0__height=0), "'category.image_size[0].height' must be positive"),
        (_line_with(category__annotations=None), "'category.annotations' is missing"),
        (_line_with(category__annotations__0__left="41"), "'category.annotations[0].left' must be a number"),
        (_line_with(category__annotations__0__top=True), "'category.annotations[0].top' must be a number"),
        (
            _line_with(category__annotations__0__class_id=0.5),
            "'category.annotations[0].class_id' must be an int",
        ),
        (
            _line_with(**{"category-metadata__objects__0__confidence": None}),
            "'category-metadata.objects[0].confidence' is missing",
        ),
        (
            _line_with(**{"category-metadata__human-annotated": "maybe"}),
            "'category-metadata.human-annotated' must be 'yes' or 'no', got 'maybe'",
        ),
        (
            _line_with(**{"category-metadata__type": "groundtruth/image-classification"}),
            "'category-metadata.type' must be 'groundtruth/object-detection'",
        ),
        (
            _line_with(**{"category-metadata__class-map": {"a": "Bird"}}),
            "'category-metadata.class-map' key 'a' is not a class id",
        ),
        (_line_with(**{"category-metadata__job-name": None}), "'category-metadata.job-name' is missing"),
    ],
)
def test_invalid_lines_are_reported_with_line_number_and_field(line, message):
    with pytest.raises(ManifestError, match="^output.manifest line 2: " + re.escape(message)):
        parse_output_manifest([HUMAN_LINE, line], "category")


def test_lines_of_another_job_or_conflicting_class_names_are_rejected():
    other_job = _line_with(**{"category-metadata__job-name": "labeling-job/other"})
    with pytest.raises(ManifestError, match="line 2: job 'other' differs from 'birds-job'"):
        parse_output_manifest([HUMAN_LINE, other_job], "category")
    renamed = _line_with(**{"category-metadata__class-map": {"0": "Duck"}})
    with pytest.raises(ManifestError, match="line 2: class 0 is 'Duck' here but 'Bird' on an earlier line"):
        parse_output_manifest([HUMAN_LINE, renamed], "category")


def test_empty_manifest_is_an_error():
    with pytest.raises(ManifestError, match="has no lines"):
        parse_output_manifest(["\n"], "category")


def test_label_attribute_is_found_from_its_metadata_key():
    assert label_attribute_of(json.loads(HUMAN_LINE)) == "category"
    with pytest.raises(ManifestError, match="found none"):
        label_attribute_of({"source-ref": "s3://b/k.jpg"})
    chained = json.loads(HUMAN_LINE) | {"boxes-metadata": {}}
    with pytest.raises(ManifestError, match="found 'boxes-metadata', 'category-metadata'"):
        label_attribute_of(chained)


def _numbered_lines(n, failed=()):
    return [FAILED_LINE if i in failed else HUMAN_LINE.replace("0a1b", f"img{i}") for i in range(n)]


def test_split_is_seeded_disjoint_and_eighty_twenty():
    lines = _numbered_lines(10)
    split = split_manifest(lines, "category", seed=7)
    assert (len(split.train_lines), len(split.validation_lines), split.excluded_failed) == (8, 2, 0)
    assert sorted(split.train_lines + split.validation_lines) == sorted(lines)
    assert split == split_manifest(lines, "category", seed=7)
    other_seeds = [split_manifest(lines, "category", seed=s).train_lines for s in range(1, 6)]
    assert any(train != split.train_lines for train in other_seeds)


def test_split_excludes_failed_objects_and_blank_lines():
    lines = [*_numbered_lines(6, failed={1, 4}), "", "\n"]
    split = split_manifest(lines, "category", seed=0)
    assert split.excluded_failed == 2
    assert (len(split.train_lines), len(split.validation_lines)) == (3, 1)
    assert FAILED_LINE not in split.train_lines + split.validation_lines


def test_split_of_two_keeps_both_sets_non_empty_and_refuses_fewer():
    split = split_manifest(_numbered_lines(2), "category", seed=0, train_fraction=0.9)
    assert (len(split.train_lines), len(split.validation_lines)) == (1, 1)
    with pytest.raises(
        ManifestError, match=r"Cannot split 1 labeled manifest line\(s\) \(after excluding 1 failed\)"
    ):
        split_manifest(_numbered_lines(2, failed={0}), "category", seed=0)
    with pytest.raises(ValueError, match="train_fraction"):
        split_manifest(_numbered_lines(4), "category", seed=0, train_fraction=1.0)


def test_manifest_bytes_and_sample_count_ignore_the_trailing_newline():
    data = manifest_bytes([HUMAN_LINE, MACHINE_LINE + "\n"])
    assert data == (HUMAN_LINE + "\n" + MACHINE_LINE + "\n").encode()
    assert count_samples(data) == 2
    assert count_samples(data + b"\n\n") == 2
    assert count_samples(b"") == 0


def test_recorded_output_manifest_parses_with_known_counts():
    """The output manifest the local stack wrote for a job with automated labeling (30 images, one of them
    not an image)."""
    tree = RecordedTree.load(AUTO_JOB)
    with tree.store.open_text(tree.job_prefix + "manifests/output/output.manifest") as lines:
        manifest = parse_output_manifest(lines, "category")
    recorded = [json.loads(line) for line in (tree.folder / "manifests/output/output.manifest").open()]
    assert manifest.job_name == AUTO_JOB
    assert len(manifest.images) == 30
    assert [img.object_id for img in manifest.images] == list(range(30))
    assert [img.object_id for img in manifest.images if img.failure_reason] == tree.failed_object_ids == [16]
    assert manifest.images[16].failure_reason.startswith("ClientError: The data object s3://recorded-trees/")
    human = [img.object_id for img in manifest.images if img.human_annotated]
    assert len(human) == tree.counters["HumanLabeled"]
    assert human == [
        i for i, line in enumerate(recorded) if line["category-metadata"].get("human-annotated") == "yes"
    ]
    boxes = [len(line["category"]["annotations"]) if "category" in line else 0 for line in recorded]
    np.testing.assert_array_equal(manifest.consolidated.counts(30), boxes)
    assert [(img.width, img.height) for img in manifest.images if not img.failure_reason] == [
        size for size in tree.image_sizes if size is not None
    ]
    assert [img.image_id for img in manifest.images] == tree.image_ids
    split = split_manifest(manifest.raw_lines, "category", seed=1)
    assert (len(split.train_lines), len(split.validation_lines), split.excluded_failed) == (23, 6, 1)
