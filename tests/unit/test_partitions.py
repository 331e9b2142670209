"""A run's own images: the partition URI its template renders to, and the images chosen from it (moto S3)."""

import io

import jinja2
import pytest
from PIL import Image

from ground_truth_pipeline.partitions import (
    ImagesPrefix,
    PartitionImage,
    choose_partition_images,
    partition_image_keys,
    render_images_prefix,
)

BUCKET = "incoming-images"


def jinja(template: str) -> str:
    return jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(template).render(ds="2026-12-05")


def image_bytes(kind: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (10, 20, 30)).save(buffer, format=kind)
    return buffer.getvalue()


@pytest.fixture
def s3(s3_client):
    s3_client.create_bucket(Bucket=BUCKET)
    return s3_client


def test_the_template_renders_the_runs_partition():
    where = render_images_prefix("s3://incoming-images/team-a/dt={{ ds }}", jinja)
    assert where == ImagesPrefix(BUCKET, "team-a/dt=2026-12-05/")
    assert where.uri == "s3://incoming-images/team-a/dt=2026-12-05/"
    assert render_images_prefix("s3://incoming-images", jinja) == ImagesPrefix(BUCKET, "")


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("incoming-images/dt={{ ds }}/", "which is not an s3://bucket/prefix/ URI"),
        ("s3://Incoming_Images/dt={{ ds }}/", "whose bucket 'Incoming_Images' is not a valid S3 bucket name"),
        ("s3:///dt={{ ds }}/", "whose bucket '' is not a valid S3 bucket name"),
        ("s3://incoming-images/dt={{ ds }}//x/", "is not a usable S3 key prefix"),
        ("s3://incoming-images/dt={{ no_such_variable }}/", "does not render"),
    ],
)
def test_a_template_that_renders_to_no_usable_uri_is_a_clear_error(template, reason):
    with pytest.raises(ValueError, match="images_prefix") as raised:
        render_images_prefix(template, jinja)
    assert reason in str(raised.value)
    assert template in str(raised.value)


def test_images_are_the_jpg_jpeg_and_png_objects_at_any_depth_in_key_order(s3):
    for key in ["dt=1/b.JPG", "dt=1/a.png", "dt=1/sub/deeper/c.jpeg", "dt=1/notes.txt", "dt=1/x.jpg.json"]:
        s3.put_object(Bucket=BUCKET, Key=key, Body=image_bytes("PNG"))
    s3.put_object(Bucket=BUCKET, Key="dt=10/other.jpg", Body=image_bytes("JPEG"))
    keys = list(partition_image_keys(s3, ImagesPrefix(BUCKET, "dt=1/")))
    assert keys == ["dt=1/a.png", "dt=1/b.JPG", "dt=1/sub/deeper/c.jpeg"]


def test_a_bucket_that_does_not_exist_is_named(s3):
    with pytest.raises(ValueError, match="the bucket 'no-such-bucket' does not exist"):
        list(partition_image_keys(s3, ImagesPrefix("no-such-bucket", "dt=1/")))


def test_choosing_claims_in_order_skips_what_others_hold_and_holds_out_free_images(s3):
    names = [f"img-{i}.jpg" for i in range(8)]
    for name in names:
        s3.put_object(Bucket=BUCKET, Key=f"dt=1/{name}", Body=image_bytes("JPEG"))
    s3.put_object(Bucket=BUCKET, Key="dt=1/img-1b.jpg", Body=b"<html>not an image</html>")
    uri = f"s3://{BUCKET}/dt=1/"
    taken_by_others = {uri + "img-1.jpg", uri + "img-5.jpg"}
    asked = []

    def claim(source_uri: str) -> bool:
        asked.append(source_uri)
        return source_uri not in taken_by_others

    choice = choose_partition_images(
        s3,
        ImagesPrefix(BUCKET, "dt=1/"),
        count=3,
        held_out=2,
        claim=claim,
        is_recorded=lambda source_uri: source_uri in taken_by_others,
    )

    assert [image.uri for image in choice.labeled] == [
        uri + n for n in ("img-0.jpg", "img-2.jpg", "img-3.jpg")
    ]
    assert [image.uri for image in choice.held_out] == [uri + "img-4.jpg", uri + "img-6.jpg"]
    assert asked == [uri + n for n in ("img-0.jpg", "img-1.jpg", "img-2.jpg", "img-3.jpg")]
    assert [item.uri for item in choice.not_images] == [uri + "img-1b.jpg"]
    assert choice.already_labeled == 1


def test_an_empty_or_missing_partition_chooses_nothing(s3):
    choice = choose_partition_images(
        s3, ImagesPrefix(BUCKET, "dt=2099-01-01/"), 5, 2, lambda uri: True, lambda uri: False
    )
    assert (choice.labeled, choice.held_out, choice.not_images) == ((), (), ())


def test_image_ids_are_stable_and_distinct_per_uri():
    first = PartitionImage.of(BUCKET, "dt=1/a.PNG")
    assert first == PartitionImage.of(BUCKET, "dt=1/a.PNG")
    assert first.suffix == ".png" and len(first.image_id) == 16
    assert PartitionImage.of(BUCKET, "dt=2/a.PNG").image_id != first.image_id
