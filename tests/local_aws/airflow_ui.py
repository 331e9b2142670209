"""The Airflow 3 UI as a person uses it, driven in Debian's chromium by Playwright.

Elements are found by what a person sees (roles, labels, texts); the few test ids are the UI's own
(``trigger-dag-submit``, ``state-badge``).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from playwright.sync_api import Locator, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

CHROMIUM = Path("/usr/bin/chromium")
DAG_LISTED_TIMEOUT_S = 120
_RUN_URL = re.compile(r"/dags/[^/]+/runs/([^/?#]+)")


@dataclass(frozen=True)
class AirflowUi:
    page: Page
    base_url: str

    def log_in(self, username: str, password: str) -> None:
        self.page.goto(f"{self.base_url}/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(lambda url: "/auth/login" not in url)

    def dag_link(self, dag_id: str, timeout_s: float = DAG_LISTED_TIMEOUT_S) -> Locator:
        """The DAG's link in the DAG list, reloading the list until the DAG processor has added the DAG."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.page.goto(f"{self.base_url}/dags")
            link = self.page.get_by_role("link", name=dag_id, exact=True)
            try:
                link.wait_for(timeout=5_000)
                return link
            except PlaywrightTimeoutError:
                if time.monotonic() > deadline:
                    raise

    def open_dag(self, dag_id: str) -> None:
        """Find the DAG in the DAG list and open its page."""
        self.dag_link(dag_id).click()
        self.page.wait_for_url(re.compile(rf"/dags/{re.escape(dag_id)}$"))
        self.page.get_by_role("heading", name=dag_id, exact=True).wait_for()

    def open_trigger_form(self) -> TriggerForm:
        """On a DAG's page: the dialog of its Trigger button."""
        self.page.get_by_role("button", name="Trigger Dag").click()
        dialog = self.page.get_by_role("dialog")
        dialog.wait_for()
        return TriggerForm(dialog)

    def run_state(self) -> Locator:
        """On a run's page: the run's state badge next to its id."""
        return self.page.get_by_test_id("state-badge").first

    def task_instance_rows(self) -> Locator:
        """On a run's page: the rows of its Task Instances table."""
        return self.page.locator("table tbody tr")


@dataclass(frozen=True)
class TriggerForm:
    """The Trigger Dag dialog: one field per param (label, input, description under it)."""

    dialog: Locator

    @property
    def _fields(self) -> Locator:
        # The accordion section under the "Run Parameters" button (its region has no accessible name).
        section = self.dialog.locator("[data-scope=accordion][data-part=item]").filter(
            has=self.dialog.page.get_by_role("button", name="Run Parameters")
        )
        return section.locator("[data-scope=field][data-part=root]")

    @property
    def unpause_on_trigger(self) -> Locator:
        return self.dialog.get_by_role("checkbox", name=re.compile(r"^Unpause .* on trigger$"))

    @property
    def submit_button(self) -> Locator:
        return self.dialog.get_by_test_id("trigger-dag-submit")

    def descriptions(self) -> dict[str, str]:
        """Each param's name, as its field is labelled, and the description shown under the field."""
        self._fields.first.wait_for()  # the fields come with the DAG's details, after the dialog
        shown = {}
        for field in self._fields.all():
            label = field.locator("[data-scope=field][data-part=label]").inner_text()
            shown[label.rstrip(" *\n")] = field.locator("[data-part=helper-text]").inner_text()
        return shown

    def field(self, name: str) -> Locator:
        label = self.dialog.page.locator(
            "[data-scope=field][data-part=label]", has_text=re.compile(rf"^{re.escape(name)}\b")
        )
        return self._fields.filter(has=label)

    def fill(self, name: str, value: str | int) -> None:
        """Type into a text or number field, then leave it (number fields take the value on blur)."""
        field = self.field(name).locator("input")
        field.fill(str(value))
        field.blur()

    def fill_json(self, name: str, value: Any) -> None:
        """Replace an object param's JSON in its code editor, as typed (the editor closes brackets and quotes
        itself; what it adds after the typed text is deleted)."""
        self.field(name).locator(".monaco-editor").click()
        keyboard = self.dialog.page.keyboard
        keyboard.press("Control+A")
        keyboard.insert_text(json.dumps(value))
        keyboard.press("Shift+Control+End")
        keyboard.press("Delete")

    def submit(self) -> str:
        """Press Trigger; the UI opens the new run's page. Returns the run id."""
        page = self.dialog.page
        self.submit_button.click()
        page.wait_for_url(_RUN_URL)
        match = _RUN_URL.search(page.url)
        assert match, page.url
        return unquote(match.group(1))
