"""Rendering the worker UI template with Liquid and the crowd filters, as Ground Truth does."""

from __future__ import annotations

import json

import pytest

from local_aws.groundtruth.errors import LabelingJobFailed
from local_aws.groundtruth.templates import TaskRenderer, bounding_box_element

TEMPLATE_URI = "s3://bucket/exp/instructions.template"
IMAGE_URI = "s3://bucket/exp/images/0a1b2c3d4e5f6a7b.jpg"
PRESIGNED = (
    "https://bucket.s3.amazonaws.com/exp/images/0a1b2c3d4e5f6a7b.jpg?X-Amz-Expires=900&X-Amz-Signature=ab"
)

# The reference notebook's template as make_template(test_template=False) writes it for CLASS_NAME "Bird"
# (its instructions image shortened to a few bytes).
NOTEBOOK_TEMPLATE = r"""<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>
    <crowd-form>
      <crowd-bounding-box
        name="boundingBox"
        src="{{ task.input.taskObject | grant_read_access }}"
        header="Dear Annotator, please draw a tight box around each Bird you see (if there are more than 8 birds, draw boxes around at least 8). Thank you!"
        labels="{{ task.input.labels | to_json | escape }}"
      >
        <full-instructions header="Please annotate each Bird.">

    <ol>
        <li><strong>Inspect</strong> the image</li>
        <li><strong>Determine</strong> if the specified label is/are visible in the picture.</li>
        <li><strong>Outline</strong> each instance of the specified label in the image using the provided “Box” tool.</li>
    </ol>
    <ul>
        <li>Boxes should fit tight around each object</li>
        <li>Do not include parts of the object are overlapping or that cannot be seen, even though you think you can interpolate the whole shape.</li>
        <li>Avoid including shadows.</li>
        <li>If the target is off screen, draw the box up to the edge of the image.</li>
    </ul>

        </full-instructions>
        <short-instructions>
        <img src="data:image/png;base64,iVBORw0KGgo=" style="max-width:100%">
        </short-instructions>
      </crowd-bounding-box>
    </crowd-form>
    """  # noqa: E501


class FakePresigner:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, uri: str) -> str:
        self.asked.append(uri)
        return PRESIGNED


def _render(source: str, labels: list[str] | None = None, task_object: str = IMAGE_URI) -> str:
    return TaskRenderer(source, TEMPLATE_URI, FakePresigner()).render(task_object, labels or ["Bird"])


def test_notebook_template_renders_a_bounding_box_element_with_a_presigned_image_and_the_labels():
    presign = FakePresigner()
    html = TaskRenderer(NOTEBOOK_TEMPLATE, TEMPLATE_URI, presign).render(IMAGE_URI, ["Bird", 'Odd "name"'])
    assert presign.asked == [IMAGE_URI]
    # Autoescaped in the attribute, as HTML wants it, and exactly once.
    assert (
        'src="https://bucket.s3.amazonaws.com/exp/images/0a1b2c3d4e5f6a7b.jpg?X-Amz-Expires=900&amp;' in html
    )
    assert "&amp;amp;" not in html
    element = bounding_box_element(html)
    assert element is not None
    assert element["name"] == "boundingBox"
    assert element["src"] == PRESIGNED
    assert json.loads(element["labels"]) == ["Bird", 'Odd "name"']
    assert "Please annotate each Bird." in html


def test_values_are_autoescaped_unless_marked_safe():
    source = "{{ task.input.labels | to_json }}|{{ task.input.labels | first | skip_autoescape }}"
    assert _render(source, ["<b>"]) == "[&#34;&lt;b&gt;&#34;]|<b>"


def test_escape_once_does_not_escape_twice():
    assert _render("{{ task.input.labels | first | escape_once }}", ["a &amp; b < c"]) == "a &amp; b &lt; c"


def test_to_json_encodes_the_whole_input():
    html = _render("{{ task.input | to_json | skip_autoescape }}", ["Bird"])
    assert json.loads(html) == {"taskObject": IMAGE_URI, "labels": ["Bird"]}


def test_grant_read_access_leaves_a_value_that_is_not_an_s3_uri_alone():
    presign = FakePresigner()
    html = TaskRenderer("{{ task.input.taskObject | grant_read_access }}", TEMPLATE_URI, presign).render(
        "https://example.com/a.jpg", ["Bird"]
    )
    assert html == "https://example.com/a.jpg"
    assert presign.asked == []


def test_syntax_error_fails_with_the_parser_message_and_where():
    with pytest.raises(LabelingJobFailed) as failure:
        TaskRenderer("<crowd-form>\n{% for %}\n</crowd-form>", TEMPLATE_URI, FakePresigner())
    assert failure.value.reason == (
        f"ClientError: The worker UI template {TEMPLATE_URI} could not be parsed: missing expression"
        " at line 2, column 4"
    )


def test_unclosed_tag_fails_with_the_parser_message():
    with pytest.raises(LabelingJobFailed, match="could not be parsed: expected tag endif"):
        TaskRenderer("{% if task.input %}<crowd-bounding-box>", TEMPLATE_URI, FakePresigner())


def test_unknown_filter_fails_at_render_time():
    renderer = TaskRenderer(
        "<p>\n{{ task.input.taskObject | grant_access }}</p>", TEMPLATE_URI, FakePresigner()
    )
    with pytest.raises(LabelingJobFailed) as failure:
        renderer.render(IMAGE_URI, ["Bird"])
    assert failure.value.reason.endswith(
        "could not be rendered: unknown filter 'grant_access' at line 2, column 28"
    )


def test_bounding_box_element_is_none_for_other_templates():
    assert (
        bounding_box_element("<crowd-form><crowd-image-classifier name='c'></crowd-image-classifier>") is None
    )
    assert bounding_box_element("<crowd-bounding-box src='x'/>") == {"src": "x"}
