"""A person's browser window on the worker portal, driven by Playwright in Debian's chromium.

Elements are found as a person finds them (labels, button names); the bounding box's image by its test id.
Which object a task shows is read from the stack's state file, as only a test may.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

_RECT_JS = "e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }"
Box = tuple[float, float, float, float]
# Where a person draws on an object's image, given the object and the image's size (width, height).
Target = Callable[[int, tuple[int, int]], Box]
Drawn = dict[int, list[dict[str, Any]]]  # the boxes drawn on each object, in the element's terms


@dataclass
class Worker:
    """One person's browser window on the portal."""

    name: str
    page: Page
    portal: str
    state_db: Path

    def sign_in(self, password: str) -> None:
        self.page.goto(f"{self.portal}/sign-in")
        self.page.get_by_label("Name").fill(self.name)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(f"{self.portal}/")

    def start(self) -> None:
        self.page.goto(f"{self.portal}/")
        self.page.get_by_role("button", name="Start working").click()
        self.page.wait_for_url("**/tasks/*")

    def start_when_offered(self, timeout_s: float) -> None:
        """Reload the job list, as a person waiting for work does, until a job has tasks; start on it."""
        deadline = time.monotonic() + timeout_s
        start = self.page.get_by_role("button", name="Start working")
        while True:
            self.page.goto(f"{self.portal}/")
            if start.count() and start.first.is_enabled():
                start.first.click()
                self.page.wait_for_url("**/tasks/*")
                return
            assert time.monotonic() < deadline, f"no job was offered to {self.name} in {timeout_s} s"
            time.sleep(1)

    @property
    def task_id(self) -> int:
        return int(self.page.url.rsplit("/", 1)[1])

    def object_id(self) -> int:
        """The object of the task on screen (the test reads the stack's state file)."""
        with sqlite3.connect(self.state_db) as db:
            row = db.execute("SELECT object_id FROM private_tasks WHERE id = ?", (self.task_id,)).fetchone()
        return row[0]

    def csrf_token(self) -> str:
        return self.page.locator('meta[name="csrf-token"]').get_attribute("content")

    def image_size(self) -> tuple[int, int]:
        """The natural size of the task's image, once it has loaded."""
        self.page.wait_for_function("document.querySelector('crowd-bounding-box').validate() === null")
        image = self.page.get_by_test_id("crowd-bounding-box-image")
        width, height = image.evaluate("e => [e.naturalWidth, e.naturalHeight]")
        return width, height

    def draw(self, x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
        """Drag a box with the mouse from image point (x0, y0) to (x1, y1); the box the element holds."""
        self.page.wait_for_function("document.querySelector('crowd-bounding-box').validate() === null")
        image = self.page.get_by_test_id("crowd-bounding-box-image")
        left, top, width, height = image.evaluate(_RECT_JS)
        natural_width, natural_height = image.evaluate("e => [e.naturalWidth, e.naturalHeight]")

        def screen(x: float, y: float) -> tuple[int, int]:
            return round(left + x * width / natural_width), round(top + y * height / natural_height)

        mouse = self.page.mouse
        mouse.move(*screen(x0, y0))
        mouse.down()
        mouse.move(*screen(x1, y1), steps=5)
        mouse.up()
        (box,) = self.page.locator("crowd-bounding-box").evaluate("e => e.value")["boundingBoxes"]
        return box

    def label_current(self, target: Target, drawn: Drawn) -> int:
        """Draw ``target(object)`` on the image on screen and submit; the object labeled."""
        object_id = self.object_id()
        drawn.setdefault(object_id, []).append(self.draw(*target(object_id, self.image_size())))
        before = self.page.url
        self.page.get_by_role("button", name="Submit").click()
        self.page.wait_for_url(lambda url: url != before)
        return object_id

    def label_all_waiting(self, target: Target, drawn: Drawn) -> list[int]:
        """Label task after task until the portal has none for this worker."""
        done = []
        while "/tasks/" in self.page.url:
            done.append(self.label_current(target, drawn))
        return done
