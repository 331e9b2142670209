import re

import pytest

from ground_truth_pipeline.labeling_cost import (
    AWS_AUTO_LABELING_MIN_IMAGES,
    DEFAULT_MAX_LABELING_COST_USD,
    check_auto_labeling_dataset,
    check_labeling_cost,
    worst_case_labeling_cost,
)
from ground_truth_pipeline.labeling_output import LabelPrices

REFERENCE = LabelPrices(per_worker=0.036, workers=5)  # $0.08 + 5 x $0.036 = $0.26 per image
PRIVATE_TEAM = LabelPrices(per_worker=0.0, workers=5)


def test_the_worst_case_is_every_image_labeled_by_humans_at_the_reference_price():
    assert worst_case_labeling_cost(100, REFERENCE) == 26.0
    assert worst_case_labeling_cost(1000, REFERENCE) == 260.0
    assert worst_case_labeling_cost(0, REFERENCE) == 0.0


def test_a_private_team_costs_only_the_per_label_fee_whatever_the_workers():
    assert worst_case_labeling_cost(1000, PRIVATE_TEAM) == 80.0
    assert worst_case_labeling_cost(1000, LabelPrices(per_worker=0.0, workers=9)) == 80.0


def test_the_default_cap_covers_the_reference_full_demo_and_not_aws_auto_labeling_minimum():
    assert check_labeling_cost(1000, REFERENCE, DEFAULT_MAX_LABELING_COST_USD) == 260.0
    with pytest.raises(ValueError, match=r"\$325\.00"):
        check_labeling_cost(AWS_AUTO_LABELING_MIN_IMAGES, REFERENCE, DEFAULT_MAX_LABELING_COST_USD)


def test_a_cost_equal_to_the_cap_passes_despite_float_sums():
    prices = LabelPrices(per_worker=0.12, workers=1)
    assert 3 * prices.human > 0.6  # 0.6000000000000001 in floats
    assert check_labeling_cost(3, prices, 0.6) == 0.6
    with pytest.raises(ValueError):
        check_labeling_cost(3, prices, 0.599)


def test_over_the_cap_the_message_shows_the_figure_its_computation_the_cap_and_the_param():
    with pytest.raises(ValueError) as raised:
        check_labeling_cost(2000, LabelPrices(per_worker=0.048, workers=3), 300.0)

    assert str(raised.value) == (
        "The labeling job could cost up to $448.00, over the cap of $300.00: "
        "2,000 images x ($0.080 per-label fee + 3 workers x $0.048 per task) "
        "if humans label every image. Raise the param max_labeling_cost_usd, or label fewer images "
        "(n_images) with fewer workers (workers_per_image)"
    )


def test_a_zero_cap_refuses_any_image():
    with pytest.raises(ValueError, match=re.escape("1 images x ($0.080 per-label fee + 5 workers x $0.000")):
        check_labeling_cost(1, PRIVATE_TEAM, 0.0)
    assert check_labeling_cost(0, PRIVATE_TEAM, 0.0) == 0.0


def test_auto_labeling_passes_at_the_minimum_and_fails_below_it_with_aws_number():
    check_auto_labeling_dataset(1250, 1250)
    check_auto_labeling_dataset(1000, 1000)
    with pytest.raises(ValueError) as raised:
        check_auto_labeling_dataset(1249, 1250)

    assert str(raised.value) == (
        "Automated labeling (param auto_labeling) needs at least 1,250 images and this run has 1,249 (AWS "
        "requires 1,250 for automated data labeling). Select more images (n_images) or turn auto_labeling off"
    )


def test_a_lower_minimum_still_names_aws_number():
    with pytest.raises(ValueError, match=r"at least 1,000 images and this run has 999 \(AWS requires 1,250"):
        check_auto_labeling_dataset(999, 1000)
