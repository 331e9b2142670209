"""Statistical charts of a run: cost, counts, training curves, boxes, agreement, mIoU, confidence, and the
trained model's validation mAP."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter, StrMethodFormatter
from scipy import stats

from ground_truth_pipeline.boxes import LabelingDataset
from ground_truth_pipeline.reports.drawing import (
    AUTO_COLOR,
    GROUP_COLORS,
    HUMAN_COLOR,
    counted,
    literal,
    new_figure,
    show_notice,
)
from ground_truth_pipeline.reports.selection import labeling_groups

TrainingCurve = tuple[str, Sequence[float]]
ConfidenceCurve = Mapping[str, tuple[np.ndarray, np.ndarray]]


def cost_and_counts_figure(iterations: pd.DataFrame) -> Figure:
    """Stacked human/auto cost, images and boxes per iteration, with the totals in each title."""
    figure = new_figure(15, 4.5)
    cost_ax, images_ax, boxes_ax = figure.subplots(1, 3)
    x = np.arange(len(iterations))
    tick_labels = [str(i) for i in iterations["iteration"]]
    panels = (
        (cost_ax, "human_cost", "auto_cost", "Cost in dollars", "Labeling cost", "${:,.2f}"),
        (images_ax, "human_images", "auto_images", "Images", "Images labeled", "{:,.0f}"),
        (boxes_ax, "human_boxes", "auto_boxes", "Boxes", "Boxes drawn", "{:,.0f}"),
    )
    for ax, human_column, auto_column, ylabel, heading, number in panels:
        human = iterations[human_column].to_numpy(dtype=float)
        auto = iterations[auto_column].to_numpy(dtype=float)
        ax.bar(x, human, width=0.7, color=HUMAN_COLOR, label="Human")
        ax.bar(x, auto, width=0.7, bottom=human, color=AUTO_COLOR, label="Auto")
        human_total, auto_total = number.format(human.sum()), number.format(auto.sum())
        ax.set_title(literal(f"{heading}: {human_total} human, {auto_total} auto"), fontsize=11)
        ax.set_xticks(x, tick_labels)
        ax.set_xlabel("Iteration")
        ax.set_ylabel(ylabel)
        # Headroom above the tallest stack keeps the legend off the bars.
        ax.set_ylim(0, 1.25 * max(float(np.max(human + auto, initial=0.0)), 1e-9))
        if ax is not cost_ax:
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="upper right")
    total = iterations["human_cost"].sum() + iterations["auto_cost"].sum()
    figure.suptitle(literal(f"Cost and counts per iteration (total ${total:,.2f})"), fontsize=13)
    return figure


def training_curves_figure(curves: Sequence[TrainingCurve]) -> Figure:
    """Validation mAP per epoch of every active-learning model, or a notice when none was trained."""
    figure = new_figure(8, 4.5)
    ax = figure.subplots()
    if not curves:
        show_notice(ax, "No automated labeling in this job:\nno active-learning models were trained.")
        return figure
    palette = colormaps["viridis"]
    for position, (label, values) in enumerate(curves):
        epochs = np.arange(1, len(values) + 1)
        color = palette(position / max(1, len(curves) - 1))
        ax.plot(
            epochs,
            np.asarray(values, dtype=float),
            marker="o",
            markersize=3,
            color=color,
            label=literal(label),
        )
    ax.set_title("Active-learning training curves", fontsize=12)
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Validation mAP")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.4)
    ax.legend(fontsize=8)
    return figure


def validation_map_figure(job_name: str, validation_map: Sequence[float]) -> Figure:
    """The trained model's validation mAP per epoch (as its training job logged it), its best epoch marked;
    a notice when the job logged none."""
    figure = new_figure(8, 4.5)
    ax = figure.subplots()
    values = np.asarray(validation_map, dtype=float)
    if not np.isfinite(values).any():
        show_notice(ax, f"The training job {job_name}\nlogged no validation mAP.")
        return figure
    epochs = np.arange(1, len(values) + 1)
    best = int(np.nanargmax(values))
    ax.plot(epochs, values, marker="o", markersize=3, color=HUMAN_COLOR, label="Validation mAP")
    ax.plot(
        epochs[best],
        values[best],
        "*",
        markersize=14,
        color=AUTO_COLOR,
        label=f"Best: {values[best]:.3f} at epoch {epochs[best]}",
    )
    ax.set_title(
        literal(f"{job_name}\nvalidation mAP {values[-1]:.3f} after {counted(len(values), 'epoch')}"),
        fontsize=11,
    )
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Validation mAP")
    ax.set_ylim(0, max(1.1 * float(np.nanmax(values)), 0.05))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.4)
    ax.legend(loc="lower right", fontsize=9)
    return figure


def box_count_figure(dataset: LabelingDataset, confidence: np.ndarray) -> Figure:
    """Images per number of consolidated boxes (log scale) and mean confidence per box count."""
    figure = new_figure(13, 4.5)
    histogram_ax, confidence_ax = figure.subplots(1, 2)
    box_counts = dataset.consolidated.counts(len(dataset.images))
    groups = [g for g in labeling_groups(dataset) if len(g.indices)]
    if not groups:
        show_notice(histogram_ax, "The job has no labeled images.")
        show_notice(confidence_ax, "The job has no labeled images.")
        return figure
    edges = np.arange(int(box_counts.max()) + 2) - 0.5
    heights, _, _ = histogram_ax.hist(
        [box_counts[g.indices] for g in groups],
        bins=edges,
        label=[g.name for g in groups],
        color=[GROUP_COLORS[g.name] for g in groups],
        log=True,
    )
    histogram_ax.set_title("Images by number of boxes", fontsize=12)
    histogram_ax.set_xlabel("Consolidated boxes in the image")
    histogram_ax.set_ylabel("Images (log scale)")
    # From 0.5 so that a single image still shows; up to twice the highest to make room for a legend.
    histogram_ax.set_ylim(0.5, 2 * float(np.max(heights)))
    histogram_ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    histogram_ax.yaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
    histogram_ax.yaxis.set_minor_formatter(NullFormatter())
    histogram_ax.legend()
    for group in groups:
        counts = box_counts[group.indices]
        values = confidence[group.indices]
        finite = np.isfinite(values)
        images = np.bincount(counts[finite], minlength=len(edges) - 1)
        sums = np.bincount(counts[finite], weights=values[finite], minlength=len(edges) - 1)
        present = np.flatnonzero(images)
        confidence_ax.plot(
            present,
            sums[present] / images[present],
            "D",
            color=GROUP_COLORS[group.name],
            label=group.name,
        )
    confidence_ax.set_title("Mean image confidence by number of boxes", fontsize=12)
    confidence_ax.set_xlabel("Consolidated boxes in the image")
    confidence_ax.set_ylabel("Mean confidence")
    confidence_ax.set_ylim(-0.05, 1.05)
    confidence_ax.set_xlim(histogram_ax.get_xlim())
    confidence_ax.legend()
    for ax in (histogram_ax, confidence_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure


def miou_histogram_figure(dataset: LabelingDataset, miou: np.ndarray) -> Figure:
    """Distribution of per-image mIoU against the reference boxes, human vs auto."""
    figure = new_figure(10, 4.5)
    ax = figure.subplots()
    summaries = []
    data, labels, colors = [], [], []
    for group in labeling_groups(dataset):
        values = miou[group.indices]
        values = values[np.isfinite(values)]
        if len(values):
            summaries.append(
                f"{len(values)} {group.name.lower()}-labeled images, mean mIoU {values.mean():.3f}"
            )
            data.append(values)
            labels.append(group.name)
            colors.append(GROUP_COLORS[group.name])
        else:
            summaries.append(f"no {group.name.lower()}-labeled images")
    if not data:
        show_notice(ax, "No image has an mIoU against the reference boxes.")
        return figure
    ax.hist(data, bins=np.linspace(0, 1, 17), label=labels, color=colors, edgecolor="black", rwidth=0.85)
    ax.set_title("\n".join(summaries), fontsize=11)
    ax.set_xlabel("mIoU with the reference boxes")
    ax.set_ylabel("Images")
    ax.set_xticks(np.linspace(0, 1, 5))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    return figure


def worker_agreement_figure(
    dataset: LabelingDataset, agreement: np.ndarray, confidence: np.ndarray
) -> Figure:
    """How closely the workers matched the consolidated labels, and whether confidence says as much.

    Needs no reference boxes: for a run on a team's own images it is the report's view of label quality.
    """
    figure = new_figure(13, 4.5)
    histogram_ax, scatter_ax = figure.subplots(1, 2)
    human = np.flatnonzero(dataset.labeled_by_humans & np.isfinite(agreement))
    if not len(human):
        for ax in (histogram_ax, scatter_ax):
            show_notice(ax, "No worker drew a box in this job:\nthere is no worker agreement to show.")
        return figure
    values = agreement[human]
    histogram_ax.hist(values, bins=np.linspace(0, 1, 17), color=HUMAN_COLOR, edgecolor="black", rwidth=0.85)
    histogram_ax.set_title(
        f"{len(values)} human-labeled images with worker boxes, mean agreement {values.mean():.3f}",
        fontsize=11,
    )
    histogram_ax.set_xlabel("Mean mIoU of the workers' boxes with the consolidated boxes")
    histogram_ax.set_ylabel("Images")
    histogram_ax.set_xticks(np.linspace(0, 1, 5))
    histogram_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _scatter_with_regression(scatter_ax, "Human", confidence[human], values)
    scatter_ax.set_title("Worker agreement vs confidence, with a least-squares line", fontsize=12)
    scatter_ax.set_xlabel("Image confidence")
    scatter_ax.set_ylabel("Worker agreement")
    scatter_ax.set_xlim(-0.05, 1.05)
    scatter_ax.set_ylim(-0.05, 1.05)
    scatter_ax.legend(fontsize=8)
    return figure


def regression_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """Least-squares ``(slope, intercept)`` of y on x over finite pairs; None when no line is defined."""
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    if len(x) < 2 or np.ptp(x) == 0:
        return None
    fit = stats.linregress(x, y)
    return float(fit.slope), float(fit.intercept)


def confidence_vs_miou_figure(
    dataset: LabelingDataset, miou: np.ndarray, confidence: np.ndarray, confidence_curve: ConfidenceCurve
) -> Figure:
    """mIoU against confidence with a regression line per group, next to the mIoU of the top-x% images."""
    figure = new_figure(13, 5)
    scatter_ax, curve_ax = figure.subplots(1, 2)
    for group in labeling_groups(dataset):
        if len(group.indices):
            _scatter_with_regression(scatter_ax, group.name, confidence[group.indices], miou[group.indices])
    scatter_ax.set_title("mIoU vs confidence, with least-squares lines", fontsize=12)
    scatter_ax.set_xlabel("Image confidence")
    scatter_ax.set_ylabel("mIoU with the reference boxes")
    scatter_ax.set_xlim(-0.05, 1.05)
    scatter_ax.set_ylim(-0.05, 1.05)
    if scatter_ax.has_data():
        scatter_ax.legend(fontsize=8)
    _top_confidence_curve(curve_ax, confidence_curve)
    return figure


def _scatter_with_regression(ax: Axes, name: str, confidence: np.ndarray, quality: np.ndarray) -> None:
    color = GROUP_COLORS[name]
    ax.plot(confidence, quality, ".", color=color, alpha=0.6, label=f"{name} ({len(quality)} images)")
    line = regression_line(confidence, quality)
    if line is None:
        return
    slope, intercept = line
    xs = np.array([0.0, 1.0])
    ax.plot(xs, slope * xs + intercept, color=color, linewidth=2.5, label=f"{name} fit, slope {slope:.2f}")


def _top_confidence_curve(ax: Axes, confidence_curve: ConfidenceCurve) -> None:
    drawn = False
    for name, (top_percent, group_miou) in confidence_curve.items():
        if len(top_percent):
            color = GROUP_COLORS.get(name)
            ax.plot(top_percent, group_miou, marker="o", markersize=3, color=color, label=name)
            drawn = True
    if not drawn:
        show_notice(ax, "No confidence thresholds to compare.")
        return
    ax.set_title("mIoU of the most confident images", fontsize=12)
    ax.set_xlabel("Top x% of images by confidence")
    ax.set_ylabel("Group mIoU")
    ax.set_xlim(105, 0)
    ax.grid(True, alpha=0.4)
    ax.legend(fontsize=8)
