import base64
import io
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from ground_truth_pipeline.instructions import examples_figure, instructions_template

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def example_images():
    rng = np.random.default_rng(7)
    wide = rng.integers(0, 255, size=(120, 200, 3), dtype=np.uint8)
    tall = rng.integers(0, 255, size=(180, 120, 3), dtype=np.uint8)
    return [
        (wide, np.array([[0.1, 0.2, 0.5, 0.9], [0.6, 0.1, 1.0, 0.4]])),
        (tall, np.array([[0.0, 0.0, 0.3, 0.3]])),
    ]


@pytest.fixture(scope="module")
def figure_png():
    return examples_figure(example_images(), "Bird")


def embedded_png(template: str) -> bytes:
    match = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', template)
    assert match, "no PNG data URI in the template"
    return base64.b64decode(match.group(1), validate=True)


def test_template_holds_the_crowd_elements_and_liquid_expressions(figure_png):
    template = instructions_template("Bird", figure_png)
    assert '<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>' in template
    assert (
        template.index("<crowd-form>")
        < template.index("<crowd-bounding-box")
        < template.index("</crowd-form>")
    )
    assert 'name="boundingBox"' in template
    assert 'src="{{ task.input.taskObject | grant_read_access }}"' in template
    assert 'labels="{{ task.input.labels | to_json | escape }}"' in template
    assert re.search(r'<full-instructions header="[^"]*Bird[^"]*">', template)
    assert "</full-instructions>" in template
    assert (
        template.index("<short-instructions>")
        < template.index("data:image/png")
        < template.index("</short-instructions>")
    )
    assert re.search(r'<crowd-bounding-box[^>]*header="[^"]*Bird[^"]*"', template)


def test_template_gives_the_box_drawing_rules():
    template = instructions_template("Bird", None).lower()
    for rule in ("tight", "every bird", "hidden", "edge", "at least 10"):
        assert rule in template


def test_template_embeds_the_examples_png(figure_png):
    assert embedded_png(instructions_template("Bird", figure_png)) == figure_png


def test_template_without_examples_has_no_image():
    template = instructions_template("Bird", None)
    assert "<img" not in template
    assert "<short-instructions>" in template


def test_template_rejects_non_png_examples():
    with pytest.raises(ValueError, match="PNG"):
        instructions_template("Bird", b"GIF89a")


class TagCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_hostile_class_name_is_escaped_for_html_and_liquid():
    hostile = '"><script>alert(1)</script>{{ task.input | to_json }}{% raw %}'
    template = instructions_template(hostile, None)
    parser = TagCollector()
    parser.feed(template)
    # The name adds no element and breaks out of no attribute: a browser reads it back verbatim.
    assert [tag for tag, _ in parser.tags].count("script") == 1
    box_attributes = dict(parser.tags)["crowd-bounding-box"]
    assert set(box_attributes) == {"name", "src", "header", "labels"}
    assert hostile in box_attributes["header"]
    assert hostile in dict(parser.tags)["full-instructions"]["header"]
    # Only the template's own two Liquid outputs remain; the name opens no Liquid output or tag.
    assert template.count("{{") == 2
    assert "{%" not in template
    assert "&#123;&#123; task.input | to_json &#125;&#125;&#123;% raw %&#125;" in template


@pytest.mark.parametrize("class_name", ["", "   "])
def test_template_needs_a_class_name(class_name):
    with pytest.raises(ValueError, match="class_name"):
        instructions_template(class_name, None)


def test_examples_figure_is_a_png_of_sane_size(figure_png):
    assert figure_png.startswith(PNG_SIGNATURE)
    assert len(figure_png) < 200_000
    with Image.open(io.BytesIO(figure_png)) as image:
        image.verify()
    with Image.open(io.BytesIO(figure_png)) as image:
        width, height = image.size
        pixels = np.asarray(image.convert("RGB"))
    assert 150 <= width <= 600
    assert width < height <= 1500  # the examples stand one above the other
    blue = (pixels[..., 2] > 200) & (pixels[..., 0] < 60) & (pixels[..., 1] < 60)
    assert blue.sum() > 100, "the reference boxes are drawn"


def test_examples_figure_takes_a_class_name_with_dollar_signs():
    png = examples_figure(example_images()[:1], "$5 note")
    assert png.startswith(PNG_SIGNATURE)


@pytest.mark.parametrize(
    ("image", "boxes", "message"),
    [
        (np.zeros((10, 10), np.uint8), np.zeros((0, 4)), r"example 0: image must be an \(H, W, 3\) uint8"),
        (np.zeros((10, 10, 3), np.float32), np.zeros((0, 4)), "uint8"),
        (np.zeros((10, 10, 3), np.uint8), np.array([[0.1, 0.2, 0.3]]), r"\(n, 4\)"),
        (np.zeros((10, 10, 3), np.uint8), np.array([[0.1, 0.2, 1.5, 0.3]]), r"normalised to \[0, 1\]"),
        (np.zeros((10, 10, 3), np.uint8), np.array([[0.5, 0.2, 0.1, 0.3]]), "min <= max"),
    ],
)
def test_examples_figure_rejects_bad_examples(image, boxes, message):
    with pytest.raises(ValueError, match=message):
        examples_figure([(image, boxes)], "Bird")


def test_examples_figure_needs_an_example():
    with pytest.raises(ValueError, match="at least one"):
        examples_figure([], "Bird")
