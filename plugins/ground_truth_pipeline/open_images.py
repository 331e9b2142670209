"""Select the images of one Open Images class (with its subclasses) and keep their reference boxes.

Three of Open Images' files are read:

- the class descriptions CSV, lines ``MID,DisplayName`` without a header (``/m/015p6,Bird``);
- the class hierarchy JSON, nodes ``{"LabelName": mid, "Subcategory": [node, ...]}`` under the root entity.
  A class may appear at several places in the tree. ``Part`` lists (a face is part of a person) are not
  subclasses and are not followed;
- the bounding-box CSV (``ImageID,Source,LabelName,...,XMin,XMax,YMin,YMax,...,IsGroupOf,...``), with
  normalised coordinates in the order xmin, xmax, ymin, ymax. It is hundreds of megabytes, so it is streamed
  row by row and reading stops as soon as enough images are complete.

The selected images' reference boxes are written as JSON lines for the analysis, one image a line::

    {"image_id": "000002b66c9c498e",
     "boxes": [{"label": "/m/015p6", "xmin": 0.1, "xmax": 0.4, "ymin": 0.2, "ymax": 0.6, "is_group": false}]}
"""

from __future__ import annotations

import csv
import difflib
import json
import math
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import IO, Any

import numpy as np

from ground_truth_pipeline.boxes import BoxTable, open_images_to_xyxy

# Images the reference notebook skips because of risky content.
DEFAULT_DENY_LIST = frozenset({"251d4c429f6f9c39", "065ad49f98157c8d"})

BBOX_COLUMNS = ("ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax", "IsGroupOf")
_COORDINATE_COLUMNS = ("XMin", "XMax", "YMin", "YMax")
_DESCRIPTIONS_HEADER = ["LabelName", "DisplayName"]
_MAX_SUGGESTIONS = 5
_MAX_CLASSES_IN_MESSAGE = 10


class UnknownClassError(ValueError):
    """The requested class is neither a MID nor a display name of the class descriptions."""


class AmbiguousClassError(ValueError):
    """The requested display name belongs to several MIDs."""


class NotEnoughImagesError(ValueError):
    """The bounding-box CSV has fewer images of the class than were asked for."""


@dataclass(frozen=True)
class OpenImagesClass:
    mid: str
    display_name: str


@dataclass(frozen=True)
class ReferenceBox:
    """One Open Images box, normalised, in the file's order xmin, xmax, ymin, ymax."""

    label: str
    xmin: float
    xmax: float
    ymin: float
    ymax: float
    is_group: bool


@dataclass(frozen=True)
class SelectedImage:
    image_id: str
    boxes: tuple[ReferenceBox, ...]


@dataclass(frozen=True)
class Selection:
    """The images chosen for labeling, those held out for batch transform and the endpoint, in file order."""

    labeled: tuple[SelectedImage, ...]
    held_out: tuple[SelectedImage, ...]
    rows_read: int


def load_class_descriptions(stream: IO[str], source: str = "class descriptions CSV") -> dict[str, str]:
    """MID to display name; a ``LabelName,DisplayName`` header (later Open Images releases) is skipped."""
    descriptions: dict[str, str] = {}
    reader = csv.reader(stream)
    for row in reader:
        if not row or (reader.line_num == 1 and row == _DESCRIPTIONS_HEADER):
            continue
        if len(row) != 2 or not row[0].strip():
            raise ValueError(f"{source} line {reader.line_num}: expected 'MID,DisplayName', got {row!r}")
        mid, display_name = row[0].strip(), row[1].strip()
        if mid in descriptions:
            raise ValueError(f"{source} line {reader.line_num}: MID {mid} is described twice")
        descriptions[mid] = display_name
    return descriptions


def resolve_class(query: str, descriptions: dict[str, str]) -> OpenImagesClass:
    """The class whose MID or display name is ``query``, ignoring case and surrounding whitespace."""
    wanted = _normalise(query)
    for mid, display_name in descriptions.items():
        if _normalise(mid) == wanted:
            return OpenImagesClass(mid, display_name)
    named = [mid for mid, display_name in descriptions.items() if _normalise(display_name) == wanted]
    if len(named) == 1:
        return OpenImagesClass(named[0], descriptions[named[0]])
    if named:
        raise AmbiguousClassError(
            f"Class name {query!r} belongs to several classes: {', '.join(sorted(named))}; give its MID"
        )
    raise UnknownClassError(_unknown_class_message(query, descriptions))


def _normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


def _unknown_class_message(query: str, descriptions: dict[str, str]) -> str:
    by_name: dict[str, list[str]] = {}
    for mid, display_name in descriptions.items():
        by_name.setdefault(_normalise(display_name), []).append(mid)
    close = difflib.get_close_matches(_normalise(query), list(by_name), n=_MAX_SUGGESTIONS)
    suggestions = [f"{descriptions[mid]} ({mid})" for name in close for mid in by_name[name]]
    hint = f"closest matches: {', '.join(suggestions)}" if suggestions else "no class name is close to it"
    return f"Unknown Open Images class {query!r}: not a MID or display name in the class descriptions; {hint}"


def class_and_subclasses(hierarchy: dict[str, Any], mid: str) -> frozenset[str]:
    """``mid`` and every class below any of its occurrences in the hierarchy.

    Many boxable classes have no entry in the hierarchy; for them the result is ``{mid}``.
    """
    found = {mid}
    pending: list[tuple[Any, str, bool]] = [(hierarchy, "root", False)]
    while pending:
        node, where, inside = pending.pop()
        if not isinstance(node, dict) or not isinstance(node.get("LabelName"), str):
            raise ValueError(f"Class hierarchy node at {where} has no LabelName: {str(node)[:200]}")
        label = node["LabelName"]
        inside = inside or label == mid
        if inside:
            found.add(label)
        children = node.get("Subcategory", [])
        if not isinstance(children, list):
            raise ValueError(f"Class hierarchy node {label} at {where}: Subcategory is not a list")
        pending.extend((child, f"{where} > {label}[{i}]", inside) for i, child in enumerate(children))
    return frozenset(found)


def selected_image_to_json_line(image: SelectedImage) -> str:
    """One line (without its newline) of the reference boxes file."""
    return json.dumps({"image_id": image.image_id, "boxes": [asdict(box) for box in image.boxes]})


def selected_images_to_json_lines(images: Iterable[SelectedImage]) -> str:
    """The whole reference boxes file, one image a line."""
    return "".join(selected_image_to_json_line(image) + "\n" for image in images)


def read_reference_boxes(stream: IO[str], source: str = "reference boxes") -> dict[str, SelectedImage]:
    """Image id to its selected image, from a JSON-lines file written by ``selected_image_to_json_line``."""
    images: dict[str, SelectedImage] = {}
    for line_number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise TypeError(f"expected a JSON object, got {type(record).__name__}")
            image = SelectedImage(
                image_id=str(record["image_id"]),
                boxes=tuple(_reference_box_from_record(box) for box in record["boxes"]),
            )
        except (ValueError, KeyError, TypeError) as err:
            reason = f"missing key {err}" if isinstance(err, KeyError) else str(err)
            raise ValueError(f"{source} line {line_number}: not a reference boxes record ({reason})") from err
        if image.image_id in images:
            raise ValueError(f"{source} line {line_number}: image {image.image_id} appears twice")
        images[image.image_id] = image
    return images


def _reference_box_from_record(record: dict[str, Any]) -> ReferenceBox:
    if not isinstance(record["is_group"], bool):
        raise TypeError(f"is_group must be true or false, got {record['is_group']!r}")
    return ReferenceBox(
        label=str(record["label"]),
        xmin=float(record["xmin"]),
        xmax=float(record["xmax"]),
        ymin=float(record["ymin"]),
        ymax=float(record["ymax"]),
        is_group=record["is_group"],
    )


def reference_box_table(reference: dict[str, SelectedImage], image_ids: Sequence[str]) -> BoxTable:
    """The reference boxes as a table whose image index ``i`` is ``image_ids[i]``.

    Images absent from ``reference`` have no boxes; the class id is 0, the one labeled class.
    """
    boxes = [
        (index, box)
        for index, image_id in enumerate(image_ids)
        if image_id in reference
        for box in reference[image_id].boxes
    ]
    return BoxTable.build(
        image=[index for index, _ in boxes],
        xyxy=open_images_to_xyxy(
            np.array([[b.xmin, b.xmax, b.ymin, b.ymax] for _, b in boxes]).reshape(-1, 4)
        ),
        is_group=[box.is_group for _, box in boxes],
    )


def select_images(
    bbox_csv: IO[str],
    class_mids: frozenset[str],
    count: int,
    held_out: int = 0,
    deny_list: Collection[str] = (),
    allow_fewer: bool = False,
    source: str = "bounding-box CSV",
    accept: Callable[[str], bool] | None = None,
) -> Selection:
    """The first ``count`` images (in file order) with a box of ``class_mids``, then ``held_out`` more.

    Only the boxes of ``class_mids`` are kept; deny-listed images are skipped. The CSV is streamed and reading
    stops at the first row after the last wanted image, so an image's boxes must be on consecutive rows, as
    they are in Open Images' files (sorted by ImageID). An image met again after another image's rows is
    reported as an error rather than selected twice. With ``allow_fewer`` a short file yields what it has
    (labeled images first) instead of raising ``NotEnoughImagesError``. ``accept``, when given, is asked
    about each image (by id, in file order) before it is selected for labeling, and may claim it; an image
    it refuses is skipped. Held-out images are not asked about.
    """
    if count < 1 or held_out < 0:
        raise ValueError(f"Need count >= 1 and held_out >= 0, got count={count}, held_out={held_out}")
    if not class_mids:
        raise ValueError("No class MIDs to select images for")
    wanted = count + held_out
    deny = frozenset(deny_list)
    reader = csv.DictReader(bbox_csv)
    _check_bbox_header(reader.fieldnames, source)

    selected: list[SelectedImage] = []
    seen_ids: set[str] = set()
    refused = 0

    def take(image_id: str, boxes: list[ReferenceBox]) -> None:
        nonlocal refused
        if len(selected) < count and accept is not None and not accept(image_id):
            refused += 1
        else:
            selected.append(SelectedImage(image_id, tuple(boxes)))

    current_id: str | None = None
    current_boxes: list[ReferenceBox] = []
    rows_read = 0
    for row in reader:
        rows_read += 1
        image_id = row["ImageID"]
        if image_id != current_id:
            if current_boxes:
                take(current_id, current_boxes)
            if current_id is not None:
                seen_ids.add(current_id)
            if len(selected) == wanted:
                break
            if image_id in seen_ids:
                raise ValueError(
                    f"{source} line {reader.line_num}: image {image_id} appears again after other images'"
                    " rows; the rows must be grouped by ImageID, as in Open Images' files"
                )
            current_id, current_boxes = image_id, []
        if image_id not in deny and row["LabelName"] in class_mids:
            current_boxes.append(_reference_box_from_row(row, source, reader.line_num))
    else:
        if current_boxes:
            take(current_id, current_boxes)

    if len(selected) < wanted and not allow_fewer:
        denied = f" (skipping {len(deny)} deny-listed image ids)" if deny else ""
        denied += f" ({refused} more were labeled for this class by earlier runs)" if refused else ""
        raise NotEnoughImagesError(
            f"{source} has {len(selected)} images with boxes of {_describe_classes(class_mids)}{denied}, "
            f"but {wanted} were asked for ({count} to label + {held_out} held out)"
        )
    return Selection(labeled=tuple(selected[:count]), held_out=tuple(selected[count:]), rows_read=rows_read)


def _check_bbox_header(fieldnames: Sequence[str] | None, source: str) -> None:
    if fieldnames is None:
        raise ValueError(f"{source} is empty: expected a header with columns {', '.join(BBOX_COLUMNS)}")
    missing = [column for column in BBOX_COLUMNS if column not in fieldnames]
    if missing:
        raise ValueError(
            f"{source} header lacks column(s) {', '.join(missing)}; found {', '.join(fieldnames)}"
        )


def _reference_box_from_row(row: dict[str, str], source: str, line_number: int) -> ReferenceBox:
    where = f"{source} line {line_number} (image {row['ImageID']})"
    coordinates = {}
    for column in _COORDINATE_COLUMNS:
        text = row[column]
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: {column} is {text!r}, not a number") from None
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ValueError(f"{where}: {column} is {text!r}, outside the normalised range [0, 1]")
        coordinates[column] = value
    if coordinates["XMin"] > coordinates["XMax"] or coordinates["YMin"] > coordinates["YMax"]:
        raise ValueError(f"{where}: box has XMin > XMax or YMin > YMax ({coordinates})")
    group_flag = row["IsGroupOf"]
    if group_flag not in ("0", "1", "-1"):
        raise ValueError(f"{where}: IsGroupOf is {group_flag!r}, expected 0, 1 or -1 (unknown)")
    return ReferenceBox(
        label=row["LabelName"],
        xmin=coordinates["XMin"],
        xmax=coordinates["XMax"],
        ymin=coordinates["YMin"],
        ymax=coordinates["YMax"],
        is_group=group_flag == "1",
    )


def _describe_classes(class_mids: frozenset[str]) -> str:
    mids = sorted(class_mids)
    shown = ", ".join(mids[:_MAX_CLASSES_IN_MESSAGE])
    more = len(mids) - _MAX_CLASSES_IN_MESSAGE
    return f"classes {shown}" + (f" and {more} more" if more > 0 else "")
