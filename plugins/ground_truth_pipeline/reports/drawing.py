"""Drawing primitives shared by every report figure: figures, image panels, boxes, notices, PNG output.

Figures are ``matplotlib.figure.Figure`` objects, never pyplot's global state, so drawing is headless and
safe in any thread of an Airflow worker; ``Figure.savefig`` renders PNG with the Agg backend.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from pathlib import PurePosixPath

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ground_truth_pipeline.boxes import xyxy_to_pixels
from ground_truth_pipeline.reports.image_cache import ImageFailure, Thumbnail

FIGURE_DPI = 100
HUMAN_COLOR = "tab:blue"
AUTO_COLOR = "tab:orange"
GROUP_COLORS = {"Human": HUMAN_COLOR, "Auto": AUTO_COLOR}
CONSOLIDATED_COLOR = "tab:orange"
REFERENCE_COLOR = "limegreen"
PREDICTION_COLOR = "red"
# A box whose top is this close to the image's top (a fraction of its height) has its label inside.
LABEL_INSIDE_BELOW = 0.05
# tab10 without its orange and green, which mean consolidated and reference boxes in every figure.
_WORKER_COLORS = tuple(colormaps["tab10"](i) for i in (3, 4, 9, 6, 0, 5, 8, 7))


def new_figure(width_inches: float, height_inches: float, constrained: bool = True) -> Figure:
    return Figure(
        figsize=(width_inches, height_inches),
        dpi=FIGURE_DPI,
        facecolor="white",
        layout="constrained" if constrained else None,
    )


def figure_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=FIGURE_DPI, facecolor="white")
    return buffer.getvalue()


def worker_color(worker: int) -> tuple[float, float, float, float]:
    """A distinct colour per worker index (cycling after eight workers)."""
    return _WORKER_COLORS[worker % len(_WORKER_COLORS)]


def literal(text: str) -> str:
    """Text that matplotlib draws as written: two ``$`` would otherwise start mathtext, or fail to parse."""
    return text.replace("$", r"\$")


def counted(count: int, singular: str, plural: str = "") -> str:
    """``1 box``, ``2 boxes``: a count and its noun, singular or plural (by default singular + s)."""
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def show_notice(ax: Axes, message: str, fontsize: float = 12) -> None:
    """An empty panel that says why there is nothing to plot."""
    ax.set_axis_off()
    ax.text(
        0.5,
        0.5,
        literal(message),
        ha="center",
        va="center",
        fontsize=fontsize,
        wrap=True,
        transform=ax.transAxes,
    )


def show_image(
    ax: Axes, image: Thumbnail | ImageFailure, title: str = "", fontsize: float = 9
) -> Thumbnail | None:
    """Draw an image in its original pixel coordinates, or a placeholder that names the error.

    Returns the thumbnail when it was drawn (boxes can go on top of it), None for a placeholder.
    """
    if title:
        ax.set_title(literal(title), fontsize=fontsize)
    ax.set_xticks([])
    ax.set_yticks([])
    if isinstance(image, ImageFailure):
        ax.set_facecolor("0.92")
        name = PurePosixPath(image.uri).name
        message = "\n".join(["Image could not be drawn", name, *textwrap.wrap(image.error, width=28)[:4]])
        ax.text(
            0.5,
            0.5,
            literal(message),
            ha="center",
            va="center",
            color="darkred",
            fontsize=max(fontsize - 2, 5),
            transform=ax.transAxes,
        )
        return None
    ax.imshow(image.pixels, extent=(0, image.width, image.height, 0), interpolation="bilinear")
    ax.set_xlim(0, image.width)
    ax.set_ylim(image.height, 0)
    return image


def draw_boxes(
    ax: Axes,
    image: Thumbnail,
    xyxy: np.ndarray,
    color: str | Sequence[tuple[float, float, float, float]],
    linewidth: float = 1.5,
    labels: Sequence[str] = (),
    fontsize: float = 7,
) -> None:
    """Draw normalised xyxy boxes on an image drawn by ``show_image``, optionally labelled at their top left
    corner: above the box, or inside it where the box touches the top of the image (above, the label would
    be cut off and run into the panel's title)."""
    pixels = xyxy_to_pixels(xyxy, image.width, image.height)
    if not len(pixels):
        return
    rectangles = [Rectangle((x0, y0), x1 - x0, y1 - y0) for x0, y0, x1, y1 in pixels]
    ax.add_collection(PatchCollection(rectangles, facecolor="none", edgecolor=color, linewidth=linewidth))
    for (x0, y0, _, _), label in zip(pixels, labels, strict=False):
        ax.text(
            x0,
            y0,
            literal(label),
            color="white",
            fontsize=fontsize,
            va="top" if y0 < LABEL_INSIDE_BELOW * image.height else "bottom",
            ha="left",
            bbox={"facecolor": "black", "edgecolor": "none", "pad": 1, "alpha": 0.6},
            clip_on=True,
        )
