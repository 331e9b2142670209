"""The demo's summary line about label quality, for Open Images runs and runs on a team's own images."""

from scripts.demo import quality_summary


def metrics(reference_boxes: bool, miou: float | None, ap50: float | None) -> dict:
    return {
        "reference_boxes": reference_boxes,
        "mean_image_miou": {"all": miou},
        "detection_vs_reference": {"ap50": ap50, "precision": 0.9, "recall": None},
        "worker_agreement": {"mean_worker_miou_with_consolidated": 0.8125},
    }


def test_an_open_images_run_prints_its_scores_and_n_a_for_an_undefined_one() -> None:
    assert quality_summary(metrics(True, 0.75, 0.5)) == (
        "Against the Open Images boxes: mean image mIoU 0.750, AP50 0.500, precision 0.900, recall n/a. "
        "Workers' boxes against the labels: mean mIoU 0.812."
    )


def test_a_run_without_reference_boxes_says_so_instead_of_failing_on_null() -> None:
    assert quality_summary(metrics(False, None, None)) == (
        "No reference boxes: this run labeled your own images, so there is no mIoU or AP50. "
        "Workers' boxes against the labels: mean mIoU 0.812."
    )
