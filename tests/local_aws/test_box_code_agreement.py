"""The product's box code and the stack's agree wherever their definitions do.

Each side has one home for boxes (``ground_truth_pipeline.boxes``, ``local_aws.boxes``), one ``split_s3_uri``
and one ``ReferenceBox``; neither may import the other, so these tests hold them together. The two image
mIoUs are different measures on purpose; they agree where their definitions coincide, and the cases where
they part are written down here.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ground_truth_pipeline import boxes as product_boxes
from ground_truth_pipeline.boxes import BoxTable
from ground_truth_pipeline.metrics import class_blind_image_miou
from ground_truth_pipeline.object_store import split_s3_uri as product_split_s3_uri
from ground_truth_pipeline.open_images import ReferenceBox as ProductReferenceBox
from ground_truth_pipeline.open_images import SelectedImage, reference_box_table
from local_aws import boxes as stack_boxes
from local_aws.groundtruth.active_learning import per_class_image_miou
from local_aws.groundtruth.crowd import targets_of
from local_aws.reference_index import ReferenceBox as StackReferenceBox
from local_aws.reference_index import ReferenceImage
from local_aws.s3_objects import split_s3_uri as stack_split_s3_uri

BIRD = "/m/015p6"


def _grid_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Boxes with corners on an eighth-grid, so identical, touching, contained, zero-area and inverted boxes
    are common."""
    return rng.integers(0, 9, (n, 4)) / 8.0


def _product_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return product_boxes.pairwise_iou(a[None], b[None])[0]


def test_iou_is_the_same_on_both_sides_for_random_boxes():
    rng = np.random.default_rng(13)
    continuous = rng.uniform(0.0, 1.0, (300, 4))
    continuous[:, 2:] = continuous[:, :2] + rng.uniform(0.0, 0.5, (300, 2))
    a = np.concatenate([_grid_boxes(rng, 300), continuous[:150]])
    b = np.concatenate([_grid_boxes(rng, 250), continuous[150:]])

    product = _product_iou(a, b)
    stack = stack_boxes.iou_matrix(a, b)

    np.testing.assert_array_equal(product, stack)
    # The random boxes do reach the cases that matter.
    width_a, height_a = (a[:, 2] - a[:, 0]), (a[:, 3] - a[:, 1])
    assert np.any((width_a == 0) | (height_a == 0)), "no zero-area box"
    assert np.any((width_a < 0) | (height_a < 0)), "no inverted box"
    assert np.any(product == 1.0), "no identical boxes"
    assert 0.0 < product.mean() < 1.0


@pytest.mark.parametrize(
    ("a", "b", "iou"),
    [
        ([0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.5], 1.0),  # identical
        ([0.0, 0.0, 0.5, 0.5], [0.5, 0.0, 1.0, 0.5], 0.0),  # touching along an edge
        ([0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], 0.0),  # touching at a corner
        ([0.0, 0.0, 1.0, 1.0], [0.25, 0.25, 0.75, 0.75], 0.25),  # contained
        ([0.0, 0.0, 0.5, 1.0], [0.25, 0.0, 0.75, 1.0], 1 / 3),  # overlapping
        ([0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5], 0.0),  # two points: no union
        ([0.2, 0.5, 0.8, 0.5], [0.0, 0.0, 1.0, 1.0], 0.0),  # a line inside a box
        ([0.6, 0.0, 0.4, 1.0], [0.0, 0.0, 1.0, 1.0], 0.0),  # inverted
    ],
)
def test_iou_of_special_pairs_is_the_same_on_both_sides(a, b, iou):
    a, b = np.array([a]), np.array([b])
    assert _product_iou(a, b)[0, 0] == pytest.approx(iou)
    assert stack_boxes.iou_matrix(a, b)[0, 0] == pytest.approx(iou)
    assert stack_boxes.iou_matrix(b, a)[0, 0] == pytest.approx(iou)
    assert _product_iou(b, a)[0, 0] == pytest.approx(iou)


def test_iou_of_no_boxes_is_an_empty_matrix_on_both_sides():
    none, one = np.zeros((0, 4)), np.array([[0.0, 0.0, 1.0, 1.0]])
    assert _product_iou(none, one).shape == stack_boxes.iou_matrix(none, one).shape == (0, 1)
    assert _product_iou(one, none).shape == stack_boxes.iou_matrix(one, none).shape == (1, 0)


def test_pixel_boxes_become_the_same_clipped_normalised_corners_on_both_sides():
    rng = np.random.default_rng(7)
    n = 500
    width, height = rng.integers(50, 2000, n), rng.integers(50, 2000, n)
    # Boxes from well before the top-left corner to well past the bottom-right one, some wholly outside.
    left, top = rng.uniform(-0.5, 1.2, n) * width, rng.uniform(-0.5, 1.2, n) * height
    ltwh = np.stack([left, top, rng.uniform(0, 0.8, n) * width, rng.uniform(0, 0.8, n) * height], axis=1)
    ltwh[::5] = np.round(ltwh[::5])  # integer pixels, as Ground Truth writes them

    product = product_boxes.ltwh_pixels_to_xyxy(ltwh, width, height)
    stack = stack_boxes.ltwh_pixels_to_xyxy(ltwh, width, height)

    np.testing.assert_array_equal(product, stack)
    assert product.min() == 0.0 and product.max() == 1.0  # some boxes were clipped at each edge
    for convert in (product_boxes.ltwh_pixels_to_xyxy, stack_boxes.ltwh_pixels_to_xyxy):
        assert convert([[10, 20, 30, 40]], 100, 200).tolist() == [[0.1, 0.1, 0.4, 0.3]]
        assert convert([[-5, 0, 200, 10]], 100, 100).tolist() == [[0.0, 0.0, 1.0, 0.1]]  # past both edges
        assert convert([[150, 20, 10, 10]], 100, 100).tolist() == [[1.0, 0.2, 1.0, 0.3]]  # wholly outside


@pytest.mark.parametrize(
    "uri", ["s3://bucket/key", "s3://bucket/a/b/c.json", "s3://my-bucket/prefix/", "s3://bucket//double"]
)
def test_s3_uris_of_objects_split_the_same_on_both_sides(uri):
    assert product_split_s3_uri(uri) == stack_split_s3_uri(uri)


@pytest.mark.parametrize("uri", ["s3://bucket", "s3://bucket/"])
def test_s3_uris_of_a_bucket_split_the_same_where_the_stack_accepts_them(uri):
    # The product's one function reads object keys and prefixes alike; the stack's asks for a key unless
    # told that the URI may name a bare bucket (an output path, a prefix).
    assert product_split_s3_uri(uri) == stack_split_s3_uri(uri, key_required=False) == ("bucket", "")
    with pytest.raises(ValueError, match="names a bucket but no object"):
        stack_split_s3_uri(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "https://bucket/key",
        "bucket/key",
        "s3:/bucket/key",
        "s3:///key",
        "s3://",
        "",
        "s3://bucket/key?versionId=1",  # a query would be cut off the key
        "s3://bucket/key#part",
        None,
    ],
)
def test_what_is_no_s3_uri_is_refused_on_both_sides(uri):
    with pytest.raises(ValueError, match="Not an S3 URI"):
        product_split_s3_uri(uri)
    with pytest.raises(ValueError, match="is not an S3 URI"):
        stack_split_s3_uri(uri, key_required=False)


def test_reference_boxes_have_the_same_fields_in_the_same_order():
    product_fields = [(f.name, f.type) for f in dataclasses.fields(ProductReferenceBox)]
    stack_fields = [(f.name, f.type) for f in dataclasses.fields(StackReferenceBox)]
    assert [name for name, _ in product_fields] == ["label", "xmin", "xmax", "ymin", "ymax", "is_group"]
    assert stack_fields[: len(product_fields)] == product_fields
    # The stack's further flags (the crowd draws occluded and truncated objects worse) have defaults, so a
    # box built positionally the product's way means the same on both sides.
    extra = dataclasses.fields(StackReferenceBox)[len(product_fields) :]
    assert all(f.default is False for f in extra)
    args = (BIRD, 0.1, 0.4, 0.2, 0.6, True)
    assert (
        dataclasses.asdict(ProductReferenceBox(*args)).items()
        <= dataclasses.asdict(StackReferenceBox(*args)).items()
    )


def test_reference_boxes_give_the_same_corners_on_both_sides():
    """Both read Open Images' order xmin, xmax, ymin, ymax: the product into its box table, the stack into
    the pixel boxes its crowd aims at."""
    coordinates = [(0.125, 0.5, 0.25, 0.75), (0.5, 0.875, 0.0, 0.375), (0.0, 1.0, 0.5, 1.0)]
    width, height = 800, 600
    product_table = reference_box_table(
        {"image": SelectedImage("image", tuple(ProductReferenceBox(BIRD, *c, False) for c in coordinates))},
        ["image"],
    )
    reference = ReferenceImage(
        "image", width, height, tuple(StackReferenceBox(BIRD, *c) for c in coordinates)
    )
    targets = targets_of(reference, [BIRD], {}, width, height)

    stack_normalised = np.array([t.xyxy for t in targets]) / [width, height, width, height]
    np.testing.assert_array_equal(product_table.xyxy, stack_normalised)
    assert product_table.xyxy[0].tolist() == [0.125, 0.25, 0.5, 0.75]


def _one_to_one_image(rng: np.random.Generator) -> tuple[list[list[float]], list[list[float]]]:
    """Predicted and true boxes of one image that can only pair one to one: each box lies in its own cell of
    a 4x4 grid, a cell holding a true box, a predicted box near it, both or neither."""
    cells = rng.permutation(16)[: rng.integers(0, 7)]
    predicted, truth = [], []
    for cell in cells:
        x0, y0 = (cell % 4) / 4.0, (cell // 4) / 4.0
        true_box = [x0 + 0.05, y0 + 0.05, x0 + 0.2, y0 + 0.2]
        kind = rng.integers(0, 3)  # 0: both, 1: only true (a missed box), 2: only predicted (a false box)
        if kind != 2:
            truth.append(true_box)
        if kind != 1:
            predicted.append((np.array(true_box) + rng.uniform(-0.04, 0.04, 4)).tolist())
    return predicted, truth


def test_the_two_image_mious_agree_on_one_class_with_boxes_that_pair_one_to_one():
    """With one class and no box that could match two, the score order of the product's matching and the IoU
    order of the stack's make the same pairs, and both divide by the boxes of both sides less the pairs."""
    rng = np.random.default_rng(3)
    images = [_one_to_one_image(rng) for _ in range(200)]
    images += [([], []), ([[0.1, 0.1, 0.2, 0.2]], []), ([], [[0.1, 0.1, 0.2, 0.2]])]
    predicted_image = [i for i, (predicted, _) in enumerate(images) for _ in predicted]
    true_image = [i for i, (_, truth) in enumerate(images) for _ in truth]
    predicted_table = BoxTable.build(
        image=predicted_image,
        xyxy=np.array([box for predicted, _ in images for box in predicted]).reshape(-1, 4),
        score=rng.random(len(predicted_image)),
    )
    true_table = BoxTable.build(
        image=true_image, xyxy=np.array([box for _, truth in images for box in truth]).reshape(-1, 4)
    )

    product = class_blind_image_miou(predicted_table, true_table, len(images))
    stack = [
        per_class_image_miou([(0, tuple(b)) for b in predicted], [(0, tuple(b)) for b in truth])
        for predicted, truth in images
    ]

    np.testing.assert_allclose(product, stack, rtol=1e-12)
    assert product[-3:].tolist() == [1.0, 0.0, 0.0]
    assert 0.2 < product.mean() < 0.9


def test_the_two_image_mious_differ_where_their_definitions_do():
    """The reference notebook's mIoU (product) ignores classes and matches in order of score; Ground Truth's
    auto-labeling quality (stack) matches within each class, highest IoU first, and averages the classes."""
    true_box = (0.0, 0.0, 0.4, 1.0)

    # A box of the wrong class: a perfect match for the product, none for the stack.
    wrong_class = class_blind_image_miou(
        BoxTable.build(image=[0], xyxy=[true_box], class_id=[1]),
        BoxTable.build(image=[0], xyxy=[true_box], class_id=[0]),
        1,
    )
    assert wrong_class.tolist() == [1.0]
    assert per_class_image_miou([(1, true_box)], [(0, true_box)]) == 0.0

    # Two boxes on one true box: the product pairs the more confident (IoU 0.5), the stack the closer (0.8).
    confident, close = (0.0, 0.0, 0.2, 1.0), (0.0, 0.0, 0.5, 1.0)
    by_score = class_blind_image_miou(
        BoxTable.build(image=[0, 0], xyxy=[close, confident], score=[0.3, 0.9]),
        BoxTable.build(image=[0], xyxy=[true_box]),
        1,
    )
    np.testing.assert_allclose(by_score, [0.5 / 2])
    assert per_class_image_miou([(0, close), (0, confident)], [(0, true_box)]) == pytest.approx(0.8 / 2)
