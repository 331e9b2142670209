"""The portal's own crowd HTML elements, worked as a worker works them, in Debian's chromium via Playwright.

Each test opens a task page served under the portal's Content-Security-Policy, draws and edits boxes with
the mouse and the keyboard, and checks the exact answer of ``<crowd-bounding-box>`` (AWS's answer JSON, in
natural image pixels) or what ``<crowd-form>`` posts. No request may leave for another origin, and no
CSP violation or script error may happen.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.local_aws.airflow_ui import CHROMIUM
from tests.local_aws.crowd_elements_page import (
    CSRF_TOKEN,
    IMAGE_SIZE,
    BoundingBoxPage,
    TaskSite,
    expected_box,
)

VIEWPORT = {"width": 1280, "height": 800}
IMAGE_PROPERTIES = {"height": IMAGE_SIZE[1], "width": IMAGE_SIZE[0]}


@pytest.fixture(scope="module")
def site() -> Iterator[TaskSite]:
    served = TaskSite()
    served.start()
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: as root, `make test` installs it; else: apt-get install chromium"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Watched:
    """What a page did that no test may let pass: requests, CSP violations and script errors."""

    requests: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.csp_violations.append(message.text)


@pytest.fixture
def watched() -> Watched:
    return Watched()


@pytest.fixture
def page(browser: Browser, site: TaskSite, watched: Watched) -> Iterator[Page]:
    site.posts.clear()
    site.answer = (200, {"next": "/done"})
    context = browser.new_context(viewport=VIEWPORT)
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    opened.on("request", lambda request: watched.requests.append(request.url))
    opened.on("console", watched.console)
    opened.on("pageerror", lambda error: watched.errors.append(str(error)))
    try:
        yield opened
    finally:
        context.close()
    elsewhere = [url for url in watched.requests if not url.startswith((f"{site.base_url}/", "data:"))]
    assert elsewhere == [], "requests to another origin"
    assert watched.csp_violations == []
    assert watched.errors == []


@pytest.fixture
def task(page: Page, site: TaskSite) -> BoundingBoxPage:
    page.goto(f"{site.base_url}/task")
    boxes = BoundingBoxPage(page)
    boxes.wait_for_image()
    return boxes


def submit_and_wait_for_next(task: BoundingBoxPage) -> None:
    task.page.get_by_role("button", name="Submit", exact=True).click()
    task.page.wait_for_url("**/done")


def test_two_drawn_boxes_are_posted_in_natural_image_pixels_with_the_csrf_token(task, site):
    bird = task.draw("Bird", 101.3, 120.7, 455.2, 380.9)
    task.page.get_by_role("button", name="Nest", exact=True).click()
    nest = task.draw("Nest", 900, 500, 1310.4, 777.7)
    task.page.get_by_label("Comment").fill("a comment field is no crowd element")

    submit_and_wait_for_next(task)

    [post] = site.posts
    assert post.path == "/submit"
    assert post.headers["X-CSRF-Token"] == CSRF_TOKEN
    assert post.headers["Content-Type"] == "application/json"
    assert post.body == {
        "boundingBox": {"boundingBoxes": [bird, nest], "inputImageProperties": IMAGE_PROPERTIES}
    }
    assert all(
        isinstance(value, int)
        for box in post.body["boundingBox"]["boundingBoxes"]
        for value in (box["left"], box["top"], box["width"], box["height"])
    )


def test_the_layout_fits_a_1280_by_800_window(task):
    image = task.image_rect()
    assert image.width >= 800, "the image area is large"
    assert image.width / image.height == pytest.approx(IMAGE_SIZE[0] / IMAGE_SIZE[1], rel=0.01)
    for name in ("Bird", "Nest", "Full instructions", "Submit"):
        expect(task.page.get_by_role("button", name=name, exact=True)).to_be_in_viewport()
    expect(task.page.get_by_text("Box every Bird tightly, visible parts only.")).to_be_visible()
    expect(task.page.get_by_text("Draw a tight box around every Bird in this image.")).to_be_visible()
    expect(task.page.get_by_text("Nudge the selected box 1 px")).to_be_visible()


def test_a_box_is_moved_by_its_inside_and_resized_by_its_handles(task):
    box = task.draw("Bird", 300, 300, 700, 600)
    moved = task.move_by(box, 37, -21)
    assert task.boxes() == [moved]
    grown = task.resize(moved, "se", 45, 30)
    assert task.boxes() == [grown]
    narrowed = task.resize(grown, "w", 25, 0)
    assert task.boxes() == [narrowed]
    lowered = task.resize(narrowed, "n", 0, 18)
    assert task.boxes() == [lowered]
    assert lowered["width"] < grown["width"] and lowered["height"] < grown["height"]


def test_a_click_makes_no_box_and_a_drag_beyond_the_image_is_clamped(task):
    start = task.to_screen(200, 200)
    task.drag(start, (start[0] + 1, start[1] + 1))
    assert task.boxes() == [], "a drag under 2 image px is a click"

    image = task.image_rect()
    start = task.to_screen(1400, 800)
    task.drag(start, (round(image.right) + 40, round(image.bottom) + 40))
    [box] = task.boxes()
    x0, y0 = task.to_image(start)
    assert box == expected_box("Bird", x0, y0, IMAGE_SIZE[0], IMAGE_SIZE[1])
    assert box["left"] + box["width"] == IMAGE_SIZE[0] and box["top"] + box["height"] == IMAGE_SIZE[1]

    # Dragged far past the top left corner, the box stops at the image's edges, its size unchanged.
    middle = task.to_screen(box["left"] + box["width"] / 2, box["top"] + box["height"] / 2)
    task.drag(middle, (round(image.left) - 5, round(image.top) - 5))
    assert task.boxes() == [{**box, "left": 0, "top": 0}]


def test_boxes_are_deleted_with_the_keys_and_the_button(task):
    first = task.draw("Bird", 100, 100, 300, 300)
    second = task.draw("Bird", 400, 100, 600, 300)
    third = task.draw("Bird", 700, 100, 900, 300)
    fourth = task.draw("Bird", 1000, 100, 1200, 300)
    delete_button = task.page.get_by_role("button", name="Delete box", exact=True)

    task.click_box(second)
    task.page.keyboard.press("Delete")
    assert task.boxes() == [first, third, fourth]
    expect(delete_button).to_be_disabled()

    task.click_box(first)
    task.page.keyboard.press("Backspace")
    assert task.boxes() == [third, fourth]

    task.click_box(fourth)
    delete_button.click()
    assert task.boxes() == [third]


def test_key_2_picks_the_second_label_and_relabels_the_selected_box(task):
    bird = task.draw("Bird", 100, 100, 400, 400)
    task.click_box(bird)
    task.page.keyboard.press("2")
    nest = {**bird, "label": "Nest"}
    assert task.boxes() == [nest]
    expect(task.page.get_by_role("button", name="Nest", exact=True)).to_have_attribute("aria-pressed", "true")

    second = task.draw("Nest", 600, 100, 900, 400)
    assert task.boxes() == [nest, second], "new boxes get the picked label"

    task.click_box(nest)
    task.page.get_by_role("button", name="Bird", exact=True).click()
    assert task.boxes() == [bird, second]


def test_keys_nudge_cycle_and_deselect_boxes_but_not_in_a_text_field(task):
    first = task.draw("Bird", 100, 100, 300, 300)
    second = task.draw("Bird", 400, 100, 600, 300)
    task.page.keyboard.press("Escape")
    task.page.keyboard.press("Tab")  # the first box
    task.page.keyboard.press("Tab")  # the second
    task.page.keyboard.press("ArrowRight")
    task.page.keyboard.press("Shift+ArrowDown")
    nudged = {**second, "left": second["left"] + 1, "top": second["top"] + 10}
    assert task.boxes() == [first, nudged]

    task.page.keyboard.press("Shift+Tab")  # back to the first
    task.page.keyboard.press("ArrowLeft")
    first_nudged = {**first, "left": first["left"] - 1}
    assert task.boxes() == [first_nudged, nudged]

    task.page.keyboard.press("Escape")
    task.page.keyboard.press("ArrowLeft")
    assert task.boxes() == [first_nudged, nudged], "no box is selected"

    comment = task.page.get_by_label("Comment")
    comment.click()
    comment.press_sequentially("2")
    comment.press("Backspace")
    comment.press_sequentially("1+")
    assert comment.input_value() == "1+"
    assert task.boxes() == [first_nudged, nudged]
    expect(task.page.get_by_role("button", name="Bird", exact=True)).to_have_attribute("aria-pressed", "true")


def test_ctrl_z_undoes_each_change_in_turn(task):
    first = task.draw("Bird", 100, 100, 300, 300)
    second = task.draw("Bird", 400, 100, 600, 300)
    moved = task.move_by(second, 30, 30)
    task.page.keyboard.press("2")
    relabelled = {**moved, "label": "Nest"}
    task.click_box(first)
    task.page.keyboard.press("Delete")
    assert task.boxes() == [relabelled]

    for expected in ([first, relabelled], [first, moved], [first, second], [first], [], []):
        task.page.keyboard.press("Control+z")
        assert task.boxes() == expected


def test_zoomed_in_boxes_are_still_drawn_in_image_pixels(task):
    fitted = task.image_rect()
    view = task.viewport_rect()
    middle = (round(view.left + view.width / 2), round(view.top + view.height / 2))
    at_middle = task.to_image(middle)
    for _ in range(2):
        task.page.get_by_role("button", name="Zoom in", exact=True).click()
    zoomed = task.image_rect()
    assert zoomed.width == pytest.approx(fitted.width * 1.25**2, rel=0.001)
    # Scroll offsets are whole pixels: each zoom may shift the anchor by up to half a screen pixel.
    one_screen_px = IMAGE_SIZE[0] / zoomed.width
    assert task.to_image(middle) == pytest.approx(at_middle, abs=one_screen_px), "zoomed around the middle"

    # Draw inside the visible part of the zoomed image.
    start = (round(view.left + 60), round(view.top + 50))
    end = (round(view.left + view.width - 80), round(view.top + view.height - 70))
    expected = expected_box("Bird", *task.to_image(start), *task.to_image(end))
    task.drag(start, end)
    assert task.boxes() == [expected]

    # Ctrl+wheel zooms around the pointer.
    pointer = (round(view.left + view.width / 3), round(view.top + view.height / 3))
    under_pointer = task.to_image(pointer)
    task.page.mouse.move(*pointer)
    task.page.keyboard.down("Control")
    task.page.mouse.wheel(0, -200)
    task.page.keyboard.up("Control")
    task.page.wait_for_function(
        "r => document.querySelector('crowd-bounding-box').shadowRoot"
        ".querySelector('img').getBoundingClientRect().width > r",
        arg=zoomed.width,
    )
    assert task.to_image(pointer) == pytest.approx(under_pointer, abs=one_screen_px)

    # Space + drag pans; it draws nothing.
    scroll = "document.querySelector('crowd-bounding-box').shadowRoot.querySelector('.viewport').scrollLeft"
    before = task.page.evaluate(scroll)
    task.page.keyboard.down(" ")
    task.drag(middle, (middle[0] - 100, middle[1]))
    task.page.keyboard.up(" ")
    assert task.page.evaluate(scroll) == pytest.approx(before + 100, abs=1)
    assert task.boxes() == [expected]

    task.page.keyboard.press("0")
    assert task.image_rect() == fitted
    task.page.keyboard.press("+")
    assert task.image_rect().width == pytest.approx(fitted.width * 1.25, rel=0.001)
    task.page.keyboard.press("-")
    assert task.image_rect().width == pytest.approx(fitted.width, rel=0.001)


def test_an_error_answer_is_shown_in_an_alert_and_submit_works_again(task, site):
    site.answer = (409, {"error": "This task was released to another worker."})
    box = task.draw("Bird", 100, 100, 300, 300)
    task.page.keyboard.press("Control+Enter")
    expect(task.page.get_by_role("alert")).to_have_text("This task was released to another worker.")
    submit = task.page.get_by_role("button", name="Submit", exact=True)
    expect(submit).to_be_enabled()
    assert [post.body for post in site.posts] == [
        {"boundingBox": {"boundingBoxes": [box], "inputImageProperties": IMAGE_PROPERTIES}}
    ]

    task.page.route("**/submit", lambda route: route.abort())
    submit.click()
    expect(task.page.get_by_role("alert")).to_contain_text("Could not reach the portal")
    expect(submit).to_be_enabled()

    task.page.unroute("**/submit")
    site.answer = (200, {"next": "/done"})
    submit_and_wait_for_next(task)
    assert len(site.posts) == 2


def test_enter_in_a_plain_form_posts_through_the_crowd_form_and_skip_is_left_alone(task, site):
    box = task.draw("Bird", 100, 100, 300, 300)
    task.page.get_by_label("Comment").press("Enter")
    task.page.wait_for_url("**/done")
    assert [(post.path, post.body) for post in site.posts] == [
        ("/submit", {"boundingBox": {"boundingBoxes": [box], "inputImageProperties": IMAGE_PROPERTIES}})
    ]

    site.posts.clear()
    task.page.go_back()
    task.page.get_by_role("button", name="Skip", exact=True).click()
    task.page.wait_for_url("**/skip")
    assert [(post.path, post.body) for post in site.posts] == [("/skip", "csrf_token=t")]


def test_initial_boxes_are_kept_inside_the_image_in_whole_pixels(page, site):
    page.goto(f"{site.base_url}/initial-value")
    task = BoundingBoxPage(page)
    task.wait_for_image()
    given = [expected_box("Bird", 10.4, 20.6, 110.6, 70.6), expected_box("Nest", 1550, -5, 1650, 45)]
    assert given == [
        {"height": 50, "label": "Bird", "left": 10, "top": 21, "width": 101},
        {"height": 45, "label": "Nest", "left": 1550, "top": 0, "width": 50},
    ]
    assert task.boxes() == given
    added = task.draw("Bird", 500, 500, 700, 650)
    assert task.boxes() == [*given, added]
    # With our script in the head, the box is upgraded before its instructions are parsed; they show still.
    expect(page.get_by_text("Box every Bird tightly, visible parts only.")).to_be_visible()


def test_submit_waits_for_the_image(page, site):
    held = []
    page.route("**/task-images/**", lambda route: held.append(route))  # the image never arrives
    page.goto(f"{site.base_url}/task", wait_until="domcontentloaded")
    page.get_by_role("button", name="Submit", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("The image has not loaded yet")
    assert site.posts == []
    assert held, "the image was asked for"


def test_without_the_portals_meta_tags_submit_shows_the_answer(page, site):
    page.goto(f"{site.base_url}/preview")
    preview = BoundingBoxPage(page)
    preview.wait_for_image()
    box = preview.draw("Bird", 500, 400, 800, 650)
    page.get_by_role("button", name="Submit", exact=True).click()
    shown = page.locator("crowd-form").locator("pre")
    expect(shown).to_be_visible()
    assert json.loads(shown.inner_text()) == {
        "boundingBox": {"boundingBoxes": [box], "inputImageProperties": IMAGE_PROPERTIES}
    }
    assert site.posts == []


def test_instructions_in_the_panel_in_a_dialog_and_standalone(task, site):
    page = task.page
    expect(page.get_by_role("img", name="A tightly boxed Bird")).to_be_visible()
    # The full instructions stay in the page's DOM, shown through the dialog's slot.
    full = page.get_by_text("Draw one box per Bird.")
    expect(full).to_be_hidden()
    page.get_by_role("button", name="Full instructions", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="How to box each Bird")).to_be_visible()
    expect(full).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    expect(full).to_be_hidden()

    page.goto(f"{site.base_url}/standalone")
    full = page.get_by_text("The full instructions, on their own.")
    expect(page.get_by_text("The short instructions, on their own.")).to_be_visible()
    expect(full).to_be_hidden()
    page.get_by_text("Read this first").click()
    expect(full).to_be_visible()


def test_the_portals_csp_is_in_force(page, site, watched):
    page.goto(f"{site.base_url}/inline-script")
    assert page.evaluate("typeof window.inlineScriptRan") == "undefined"
    assert page.evaluate("['crowd-form', 'crowd-bounding-box'].every(n => customElements.get(n))")
    assert watched.csp_violations, "chromium reports the blocked inline script"
    watched.csp_violations.clear()
