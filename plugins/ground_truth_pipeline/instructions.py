"""The worker task page of a bounding-box job: a Liquid HTML template of crowd HTML elements.

Ground Truth renders the template with Liquid for every image: ``task.input.taskObject`` is the image's S3
URI (``grant_read_access`` turns it into a short-lived HTTPS URL) and ``task.input.labels`` the label
categories. The worker's boxes come back under the element's name, ``boundingBox``. The short
instructions show example images with reference boxes, embedded as a PNG data URI so the template is a
single self-contained file.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from string import Template

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from ground_truth_pipeline.boxes import xyxy_to_pixels

BOUNDING_BOX_ELEMENT_NAME = "boundingBox"
TASK_OBJECT_SRC = "{{ task.input.taskObject | grant_read_access }}"
LABELS_JSON = "{{ task.input.labels | to_json | escape }}"
MAX_BOXES_WHEN_CROWDED = 10
PALETTE_COLORS = 128

# $-placeholders, so that the template's own Liquid braces need no escaping.
_TEMPLATE = Template(
    """<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>
<crowd-form>
  <crowd-bounding-box
    name="$element_name"
    src="$task_object_src"
    header="Draw a tight box around every $class_name in this image."
    labels="$labels_json"
  >
    <full-instructions header="How to box each $class_name">
      <ol>
        <li>Look over the whole image, including its edges and background, for every $class_name.</li>
        <li>Draw one box per $class_name, even where several overlap or stand close together.</li>
        <li>If the image shows no $class_name, submit it without drawing a box.</li>
      </ol>
      <ul>
        <li>Make each box tight: its sides touch the outermost visible pixels of the $class_name.</li>
        <li>Box only what you can see. Do not extend a box over parts that are hidden behind something
          else, even if you can guess where they are.</li>
        <li>When a $class_name is cut off by the image border, let its box run up to that edge.</li>
        <li>When there are very many, box at least $max_boxes of them, the largest and clearest first.</li>
      </ul>
    </full-instructions>
    <short-instructions>
      <p>Box every $class_name tightly, visible parts only.</p>
$examples
    </short-instructions>
  </crowd-bounding-box>
</crowd-form>
"""
)


def _escape_for_template(text: str) -> str:
    """HTML-escape ``text`` and encode its braces, so it can open neither a Liquid tag nor an HTML one."""
    return html.escape(text, quote=True).replace("{", "&#123;").replace("}", "&#125;")


def instructions_template(class_name: str, examples_png: bytes | None) -> str:
    """The worker UI template for boxing ``class_name``, with ``examples_png`` in the short instructions."""
    if not isinstance(class_name, str) or not class_name.strip():
        raise ValueError(f"class_name must be a non-empty string, got {class_name!r}")
    safe_name = _escape_for_template(class_name.strip())
    examples = ""
    if examples_png is not None:
        if not examples_png.startswith(b"\x89PNG\r\n\x1a\n"):
            raise ValueError("examples_png must be the bytes of a PNG image")
        data_uri = "data:image/png;base64," + base64.b64encode(examples_png).decode("ascii")
        examples = (
            f'      <img src="{data_uri}" alt="Examples of correct boxes around each {safe_name}"'
            ' style="max-width:100%">'
        )
    return _TEMPLATE.substitute(
        element_name=BOUNDING_BOX_ELEMENT_NAME,
        task_object_src=TASK_OBJECT_SRC,
        labels_json=LABELS_JSON,
        class_name=safe_name,
        max_boxes=MAX_BOXES_WHEN_CROWDED,
        examples=examples,
    )


def _check_example(index: int, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape:
        raise ValueError(
            f"example {index}: image must be an (H, W, 3) uint8 array, got {image.dtype} {image.shape}"
        )
    xyxy = np.asarray(boxes, dtype=np.float64)
    if xyxy.size == 0:
        return xyxy.reshape(0, 4)
    if xyxy.ndim != 2 or xyxy.shape[1] != 4:
        raise ValueError(f"example {index}: boxes must be an (n, 4) array of xyxy, got shape {xyxy.shape}")
    if not np.all(np.isfinite(xyxy)) or xyxy.min() < 0 or xyxy.max() > 1:
        raise ValueError(f"example {index}: boxes must be normalised to [0, 1]")
    if np.any(xyxy[:, 2] < xyxy[:, 0]) or np.any(xyxy[:, 3] < xyxy[:, 1]):
        raise ValueError(f"example {index}: boxes must be xmin, ymin, xmax, ymax with min <= max")
    return xyxy


def examples_figure(images: Sequence[tuple[np.ndarray, np.ndarray]], class_name: str, dpi: int = 72) -> bytes:
    """A PNG of example images, one above the other, each with its reference boxes (normalised xyxy)."""
    if not images:
        raise ValueError("examples_figure needs at least one example image")
    checked = [(image, _check_example(i, image, boxes)) for i, (image, boxes) in enumerate(images)]
    panel_width = 3.5
    heights = [panel_width * image.shape[0] / image.shape[1] for image, _ in checked]
    figure = Figure(
        figsize=(panel_width, sum(heights) + 0.8), dpi=dpi, facecolor="white", layout="constrained"
    )
    figure.suptitle(f"Box every {class_name} the way\nthese examples show.", fontsize=11, parse_math=False)
    axes = figure.subplots(len(checked), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    for ax, (image, xyxy) in zip(axes, checked, strict=True):
        height, width = image.shape[:2]
        ax.imshow(image)
        for xmin, ymin, xmax, ymax in xyxy_to_pixels(xyxy, width, height):
            ax.add_patch(
                Rectangle((xmin, ymin), xmax - xmin, ymax - ymin, fill=False, lw=2.5, edgecolor="blue")
            )
        ax.set_axis_off()
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    # The PNG travels base64-encoded inside the template of every task: a palette keeps it about ten
    # times smaller than full colour, and 128 colours are plenty to show where the boxes go.
    image = Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB").quantize(colors=PALETTE_COLORS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
