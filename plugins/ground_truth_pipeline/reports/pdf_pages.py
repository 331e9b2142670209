"""Multi-page PDFs of the labeled images sorted by a per-image metric (mIoU or confidence).

Each PDF has a title page, then three sections (worker boxes, consolidated human labels, auto labels), each
with its own title page and 5 x 5 image grids whose page title gives the metric range on that page. A
section shows at most ``images_per_section`` images, spread evenly over the ranking, so a job of thousands
of images still gives a PDF a person can page through.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from ground_truth_pipeline.boxes import LabelingDataset
from ground_truth_pipeline.reports.drawing import new_figure, show_notice
from ground_truth_pipeline.reports.image_cache import ImageCache
from ground_truth_pipeline.reports.image_grids import draw_consolidated_boxes, draw_worker_boxes
from ground_truth_pipeline.reports.selection import labeling_groups, ranked, spread_over_ranking

ROWS_PER_PAGE = 5
COLUMNS_PER_PAGE = 5
IMAGES_PER_PAGE = ROWS_PER_PAGE * COLUMNS_PER_PAGE
DEFAULT_IMAGES_PER_SECTION = 50
PAGE_INCHES = 10


@dataclass(frozen=True)
class PdfSection:
    """One section of a sorted PDF: which images it shows, in order, and how they are drawn."""

    title: str
    description: str
    images: np.ndarray  # indices into dataset.images, best first
    group_size: int  # images in the group before the per-section limit
    worker_boxes: bool
    reference_boxes: bool  # drawn under the consolidated boxes (never with worker boxes)

    @property
    def page_count(self) -> int:
        return math.ceil(len(self.images) / IMAGES_PER_PAGE)


def pdf_sections(
    dataset: LabelingDataset, values: np.ndarray, images_per_section: int, with_reference: bool = True
) -> list[PdfSection]:
    """The Worker, Consolidated human and Auto sections, ranked by ``values`` (highest first)."""
    human, auto = labeling_groups(dataset)
    human_ranking = spread_over_ranking(ranked(human.indices, values), images_per_section)
    auto_ranking = spread_over_ranking(ranked(auto.indices, values), images_per_section)
    reference = ",\nreference boxes in green" if with_reference else ""
    return [
        PdfSection(
            "Worker",
            "Worker labels, one colour per worker",
            human_ranking,
            len(human.indices),
            worker_boxes=True,
            reference_boxes=False,
        ),
        PdfSection(
            "Consolidated human",
            f"Consolidated human labels in orange{reference}",
            human_ranking,
            len(human.indices),
            worker_boxes=False,
            reference_boxes=with_reference,
        ),
        PdfSection(
            "Auto",
            f"Auto labels in orange{reference}",
            auto_ranking,
            len(auto.indices),
            worker_boxes=False,
            reference_boxes=with_reference,
        ),
    ]


def sorted_images_pdf(
    dataset: LabelingDataset,
    cache: ImageCache,
    values: np.ndarray,
    metric_name: str,
    class_name: str,
    images_per_section: int = DEFAULT_IMAGES_PER_SECTION,
    with_reference: bool = True,
) -> bytes:
    """The PDF of the labeled images sorted by ``values`` (one per image of the dataset), as bytes."""
    sections = pdf_sections(dataset, values, images_per_section, with_reference)
    buffer = io.BytesIO()
    metadata = {
        "Title": f"{class_name}: labeled images sorted by {metric_name}",
        "Creator": "ground_truth_pipeline",
        "CreationDate": None,  # identical inputs give identical bytes, so re-runs do not churn the file
    }
    with PdfPages(buffer, metadata=metadata) as pdf:
        pdf.savefig(
            _title_page(f"{class_name}\nImages labeled by SageMaker Ground Truth,\nsorted by {metric_name}")
        )
        for section in sections:
            pdf.savefig(_title_page(_section_heading(section, metric_name)))
            for page in range(section.page_count):
                images = section.images[page * IMAGES_PER_PAGE : (page + 1) * IMAGES_PER_PAGE]
                pdf.savefig(_grid_page(dataset, cache, values, metric_name, section, page, images))
    return buffer.getvalue()


def _section_heading(section: PdfSection, metric_name: str) -> str:
    if not len(section.images):
        return f"{section.title}\n\nNo images in this section."
    if len(section.images) == section.group_size:
        shown = f"all {section.group_size} images"
    else:
        spread = f"evenly spread over the {metric_name} ranking"
        shown = f"{len(section.images)} of {section.group_size} images,\n{spread}"
    return f"{section.title}\n\n{section.description}\n\n{shown}, highest {metric_name} first"


def _title_page(text: str) -> Figure:
    figure = new_figure(PAGE_INCHES, PAGE_INCHES, constrained=False)
    show_notice(figure.subplots(), text, fontsize=20)
    return figure


def _grid_page(
    dataset: LabelingDataset,
    cache: ImageCache,
    values: np.ndarray,
    metric_name: str,
    section: PdfSection,
    page: int,
    images: np.ndarray,
) -> Figure:
    figure = new_figure(PAGE_INCHES, PAGE_INCHES, constrained=False)
    grid = figure.add_gridspec(
        ROWS_PER_PAGE,
        COLUMNS_PER_PAGE,
        left=0.02,
        right=0.98,
        bottom=0.02,
        top=0.93,
        wspace=0.06,
        hspace=0.22,
    )
    for slot, image in enumerate(images):
        ax = figure.add_subplot(grid[divmod(slot, COLUMNS_PER_PAGE)])
        title = f"{metric_name} {_format_value(values[image])}"
        if section.worker_boxes:
            draw_worker_boxes(ax, dataset, cache, image, title, linewidth=0.8, fontsize=7)
        else:
            draw_consolidated_boxes(
                ax,
                dataset,
                cache,
                image,
                title,
                with_reference=section.reference_boxes,
                linewidth=0.8,
                fontsize=7,
            )
    first, last = _format_value(values[images[0]]), _format_value(values[images[-1]])
    page_label = f"page {page + 1} of {section.page_count}"
    figure.suptitle(
        f"{section.title} labels, {page_label}: {metric_name} from {first} to {last}", fontsize=13
    )
    return figure


def _format_value(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "n/a"
