from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest

from ground_truth_pipeline.open_images import (
    DEFAULT_DENY_LIST,
    AmbiguousClassError,
    NotEnoughImagesError,
    OpenImagesClass,
    ReferenceBox,
    SelectedImage,
    Selection,
    UnknownClassError,
    class_and_subclasses,
    load_class_descriptions,
    read_reference_boxes,
    reference_box_table,
    resolve_class,
    select_images,
    selected_image_to_json_line,
    selected_images_to_json_lines,
)

ENTITY, ANIMAL, BIRD, DUCK, OWL, SNOWY_OWL = (
    "/m/0bl9f",
    "/m/0jbk",
    "/m/015p6",
    "/m/09ddx",
    "/m/09d5_",
    "/m/0s0k",
)
PET, PARROT, PIG, PERSON, FACE, FLOWERS = (
    "/m/0pet",
    "/m/0gv1x",
    "/m/068zj",
    "/m/01g317",
    "/m/0dzct",
    "/m/0c9ph5",
)

# Bird appears under Animal and under Pet; each occurrence lists different subclasses.
HIERARCHY = {
    "LabelName": ENTITY,
    "Subcategory": [
        {
            "LabelName": ANIMAL,
            "Subcategory": [
                {
                    "LabelName": BIRD,
                    "Subcategory": [
                        {"LabelName": DUCK},
                        {"LabelName": OWL, "Subcategory": [{"LabelName": SNOWY_OWL}]},
                    ],
                },
                {"LabelName": PIG},
            ],
        },
        {"LabelName": PET, "Subcategory": [{"LabelName": BIRD, "Subcategory": [{"LabelName": PARROT}]}]},
        {"LabelName": PERSON, "Part": [{"LabelName": FACE}]},
    ],
}

DESCRIPTIONS_CSV = (
    f"{ENTITY},Entity\n{ANIMAL},Animal\n{BIRD},Bird\n{DUCK},Duck\n{OWL},Owl\n{SNOWY_OWL},Snowy owl\n"
    f'{PET},Pet\n{PARROT},Parrot\n{PIG},Pig\n{PERSON},Person\n{FACE},Human face\n{FLOWERS},"Flowers, cut"\n'
)

BBOX_HEADER = (
    "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,"
    "IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside\n"
)
BIRD_CLASSES = frozenset({BIRD, DUCK, OWL, SNOWY_OWL, PARROT})


def bbox_row(image_id: str, label: str, xmin: str, xmax: str, ymin: str, ymax: str, group: str = "0") -> str:
    return f"{image_id},xclick,{label},1,{xmin},{xmax},{ymin},{ymax},0,0,{group},0,0\n"


BBOX_CSV = BBOX_HEADER + "".join(
    [
        bbox_row("000002b66c9c498e", DUCK, "0.1", "0.4", "0.2", "0.6"),
        bbox_row("000002b66c9c498e", PERSON, "0.5", "0.9", "0.1", "0.9"),
        bbox_row("000002b97e5471a0", PIG, "0.0", "1.0", "0.0", "1.0"),
        bbox_row("065ad49f98157c8d", BIRD, "0.3", "0.5", "0.3", "0.5"),
        bbox_row("00000c4e5b1ad6bd", SNOWY_OWL, "0.0", "0.5", "0.0", "0.5", group="1"),
        bbox_row("00000c4e5b1ad6bd", FLOWERS, "0.6", "0.7", "0.6", "0.7"),
        bbox_row("00000c4e5b1ad6bd", BIRD, "0.6", "0.9", "0.5", "0.8"),
        bbox_row("0000d67245642c5f", FACE, "0.2", "0.3", "0.2", "0.3"),
        bbox_row("00013f14dd4e168f", PARROT, "0.25", "0.75", "0.1", "0.9"),
        bbox_row("0001a21ab3c4c7e2", BIRD, "0.05", "0.15", "0.05", "0.15"),
    ]
)


def descriptions() -> dict[str, str]:
    return load_class_descriptions(io.StringIO(DESCRIPTIONS_CSV, newline=""))


def select(csv_text: str = BBOX_CSV, **options: Any) -> Selection:
    stream = io.StringIO(csv_text, newline="")
    return select_images(stream, BIRD_CLASSES, **{"count": 2, "deny_list": DEFAULT_DENY_LIST, **options})


def ids(images: tuple[SelectedImage, ...]) -> list[str]:
    return [image.image_id for image in images]


def test_descriptions_keep_quoted_commas() -> None:
    loaded = descriptions()
    assert loaded[FLOWERS] == "Flowers, cut"
    assert loaded[BIRD] == "Bird"
    assert len(loaded) == 12


def test_descriptions_skip_a_header_row() -> None:
    loaded = load_class_descriptions(io.StringIO("LabelName,DisplayName\n/m/015p6,Bird\n"))
    assert loaded == {BIRD: "Bird"}


def test_malformed_description_names_its_line() -> None:
    text = "/m/015p6,Bird\n/m/0gv1x,Parrot,extra\n"
    with pytest.raises(ValueError, match=r"classes\.csv line 2: expected 'MID,DisplayName'"):
        load_class_descriptions(io.StringIO(text), source="classes.csv")


@pytest.mark.parametrize("query", [BIRD, "  bird ", "BIRD", "/M/015P6"])
def test_resolve_by_mid_or_name(query: str) -> None:
    assert resolve_class(query, descriptions()) == OpenImagesClass(BIRD, "Bird")


def test_resolve_a_name_with_a_comma() -> None:
    assert resolve_class("flowers,  cut", descriptions()) == OpenImagesClass(FLOWERS, "Flowers, cut")


def test_unknown_class_suggests_close_names() -> None:
    with pytest.raises(UnknownClassError, match=r"'Brid'.*closest matches: Bird \(/m/015p6\)"):
        resolve_class("Brid", descriptions())


def test_unknown_class_without_close_names() -> None:
    with pytest.raises(UnknownClassError, match=r"'Zebra crossing'.*no class name is close"):
        resolve_class("Zebra crossing", descriptions())


def test_name_of_several_classes_is_ambiguous() -> None:
    with pytest.raises(AmbiguousClassError, match="/m/0449p, /m/0cmf2"):
        resolve_class("jaguar", {"/m/0449p": "Jaguar", "/m/0cmf2": "Jaguar"})


def test_subclasses_are_collected_from_every_occurrence() -> None:
    assert class_and_subclasses(HIERARCHY, BIRD) == BIRD_CLASSES


def test_parts_are_not_subclasses() -> None:
    assert class_and_subclasses(HIERARCHY, PERSON) == {PERSON}


def test_class_missing_from_hierarchy_is_its_own_set() -> None:
    assert class_and_subclasses(HIERARCHY, FLOWERS) == {FLOWERS}


def test_malformed_hierarchy_names_the_node() -> None:
    broken = {"LabelName": ENTITY, "Subcategory": [{"LabelName": ANIMAL, "Subcategory": [{"Name": BIRD}]}]}
    with pytest.raises(ValueError, match=r"root > /m/0bl9f\[0\] > /m/0jbk\[0\] has no LabelName"):
        class_and_subclasses(broken, BIRD)


def test_first_images_in_file_order_with_only_class_boxes() -> None:
    selection = select(count=3)
    assert ids(selection.labeled) == ["000002b66c9c498e", "00000c4e5b1ad6bd", "00013f14dd4e168f"]
    assert selection.held_out == ()
    first, second, _ = selection.labeled
    assert first.boxes == (ReferenceBox(DUCK, 0.1, 0.4, 0.2, 0.6, is_group=False),)
    assert second.boxes == (
        ReferenceBox(SNOWY_OWL, 0.0, 0.5, 0.0, 0.5, is_group=True),
        ReferenceBox(BIRD, 0.6, 0.9, 0.5, 0.8, is_group=False),
    )


def test_deny_listed_image_is_skipped_only_when_denied() -> None:
    assert "065ad49f98157c8d" in ids(select(count=2, deny_list=()).labeled)
    assert "065ad49f98157c8d" not in ids(select(count=5, allow_fewer=True).labeled)


def test_held_out_images_follow_the_labeled_ones() -> None:
    selection = select(count=2, held_out=2)
    assert ids(selection.labeled) == ["000002b66c9c498e", "00000c4e5b1ad6bd"]
    assert ids(selection.held_out) == ["00013f14dd4e168f", "0001a21ab3c4c7e2"]
    assert not set(ids(selection.labeled)) & set(ids(selection.held_out))


def test_reading_stops_after_the_last_selected_images_rows() -> None:
    rows = [bbox_row("00000000000000aa", DUCK, "0.1", "0.2", "0.1", "0.2")]
    rows += [bbox_row("00000000000000bb", BIRD, f"0.{i}", "0.9", "0.1", "0.9") for i in range(3)]
    rows += [bbox_row(f"{i:016x}", BIRD, "0.1", "0.2", "0.1", "0.2") for i in range(0x100, 0x1100)]
    selection = select(BBOX_HEADER + "".join(rows), count=2)
    assert ids(selection.labeled) == ["00000000000000aa", "00000000000000bb"]
    assert [box.xmin for box in selection.labeled[1].boxes] == [0.0, 0.1, 0.2]
    assert selection.rows_read == 5
    assert selection.rows_read < len(rows)


def test_not_enough_images_says_found_and_asked() -> None:
    with pytest.raises(NotEnoughImagesError) as caught:
        select(count=5, held_out=2)
    message = str(caught.value)
    assert "has 4 images with boxes of classes /m/015p6, /m/09d5_, /m/09ddx, /m/0gv1x, /m/0s0k" in message
    assert "(skipping 2 deny-listed image ids)" in message
    assert "7 were asked for (5 to label + 2 held out)" in message


def test_allow_fewer_returns_what_there_is_labeled_first() -> None:
    selection = select(count=3, held_out=2, allow_fewer=True)
    assert len(selection.labeled) == 3
    assert ids(selection.held_out) == ["0001a21ab3c4c7e2"]
    assert selection.rows_read == len(BBOX_CSV.splitlines()) - 1


def test_missing_column_names_the_column_and_source() -> None:
    header = BBOX_HEADER.replace("XMax,", "")
    with pytest.raises(ValueError, match=r"boxes\.csv header lacks column\(s\) XMax"):
        select_images(io.StringIO(header), BIRD_CLASSES, count=1, source="boxes.csv")


def test_empty_csv_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"boxes\.csv is empty"):
        select_images(io.StringIO(""), BIRD_CLASSES, count=1, source="boxes.csv")


def test_bad_coordinate_names_the_line() -> None:
    text = (
        BBOX_HEADER
        + bbox_row("a", BIRD, "0.1", "0.2", "0.1", "0.2")
        + bbox_row("b", BIRD, "0.1", "x", "0", "1")
    )
    with pytest.raises(ValueError, match=r"boxes\.csv line 3 \(image b\): XMax is 'x', not a number"):
        select_images(io.StringIO(text), BIRD_CLASSES, count=2, source="boxes.csv")


def test_out_of_range_coordinate_is_an_error() -> None:
    text = BBOX_HEADER + bbox_row("a", BIRD, "0.1", "1.5", "0.1", "0.2")
    with pytest.raises(ValueError, match=r"line 2 \(image a\): XMax is '1.5', outside"):
        select_images(io.StringIO(text), BIRD_CLASSES, count=1)


def test_ungrouped_rows_are_an_error() -> None:
    text = BBOX_HEADER + "".join(
        bbox_row(image_id, BIRD, "0.1", "0.2", "0.1", "0.2") for image_id in ("a", "b", "a")
    )
    with pytest.raises(ValueError, match="line 4: image a appears again"):
        select_images(io.StringIO(text), BIRD_CLASSES, count=3)


def test_json_lines_round_trip() -> None:
    images = select(count=2, held_out=2)
    text = selected_images_to_json_lines(images.labeled + images.held_out)
    assert text.count("\n") == 4
    restored = read_reference_boxes(io.StringIO(text))
    assert list(restored) == ids(images.labeled + images.held_out)
    assert tuple(restored.values()) == images.labeled + images.held_out


def test_json_line_format() -> None:
    image = SelectedImage("000002b66c9c498e", (ReferenceBox(DUCK, 0.1, 0.4, 0.2, 0.6, is_group=True),))
    assert selected_image_to_json_line(image) == (
        '{"image_id": "000002b66c9c498e", "boxes": [{"label": "/m/09ddx", '
        '"xmin": 0.1, "xmax": 0.4, "ymin": 0.2, "ymax": 0.6, "is_group": true}]}'
    )


def test_malformed_reference_line_names_its_line() -> None:
    text = '{"image_id": "a", "boxes": []}\n\n{"image_id": "b"}\n'
    with pytest.raises(ValueError, match=r"refs\.jsonl line 3: .*missing key 'boxes'"):
        read_reference_boxes(io.StringIO(text), source="refs.jsonl")


def test_reference_box_table_converts_to_xyxy_in_the_given_image_order() -> None:
    reference = {
        "a": SelectedImage("a", (ReferenceBox(BIRD, 0.1, 0.4, 0.2, 0.8, is_group=False),)),
        "b": SelectedImage(
            "b",
            (
                ReferenceBox(BIRD, 0.0, 0.5, 0.25, 0.75, is_group=True),
                ReferenceBox(DUCK, 0.5, 0.6, 0.7, 0.9, is_group=False),
            ),
        ),
    }
    table = reference_box_table(reference, ["b", "unlabeled", "a"])
    assert table.image.tolist() == [0, 0, 2]
    np.testing.assert_allclose(
        table.xyxy, [[0.0, 0.25, 0.5, 0.75], [0.5, 0.7, 0.6, 0.9], [0.1, 0.2, 0.4, 0.8]]
    )
    assert table.is_group.tolist() == [True, False, False]
    assert table.class_id.tolist() == [0, 0, 0]


def test_reference_box_table_without_boxes_is_empty() -> None:
    table = reference_box_table({}, ["a", "b"])
    assert len(table) == 0
    assert table.counts(2).tolist() == [0, 0]
