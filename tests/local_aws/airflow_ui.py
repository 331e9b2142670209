"""The Airflow 3 UI as a person uses it, driven in Debian's chromium by Playwright.

Elements are found by what a person sees (roles, labels, texts); the few test ids are the UI's own
(``trigger-dag-submit``, ``state-badge``).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from playwright.sync_api import Locator, Page, expect
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
        form = TriggerForm(dialog)
        form.wait_for_sections()
        return form

    def open_backfill_form(self) -> BackfillForm:
        """On a DAG's page: the Trigger dialog switched to Backfill (the DAG needs a schedule for it)."""
        self.page.get_by_role("button", name="Trigger Dag").click()
        dialog = self.page.get_by_role("dialog")
        dialog.wait_for()
        dialog.get_by_text("Backfill", exact=True).click()
        dialog.get_by_text("Date Range", exact=True).wait_for()
        form = BackfillForm(dialog)
        form.wait_for_sections()
        return form

    def run_state(self) -> Locator:
        """On a run's page: the run's state badge next to its id."""
        return self.page.get_by_test_id("state-badge").first

    def task_instance_rows(self) -> Locator:
        """On a run's page: the rows of its Task Instances table."""
        return self.page.locator("table tbody tr")


@dataclass(frozen=True)
class TriggerForm:
    """The Trigger Dag dialog: one field per param (label, input, description under it), in the sections
    that the params name (``Param(section=...)``), each an accordion item."""

    dialog: Locator

    @property
    def _sections(self) -> Locator:
        return self.dialog.locator("[data-scope=accordion][data-part=item]").filter(
            has_not=self.dialog.page.get_by_role("button", name="Advanced Options")
        )

    def section_titles(self) -> list[str]:
        triggers = self._sections.locator("[data-scope=accordion][data-part=item-trigger]")
        return [title.strip() for title in triggers.all_inner_texts()]

    def wait_for_sections(self) -> None:
        self._sections.first.wait_for()  # the sections come with the DAG's details, after the dialog

    def _open(self, section: Locator) -> Locator:
        """Open ``section`` (the accordion may close the others) and return it once its fields show."""
        trigger = section.locator("[data-scope=accordion][data-part=item-trigger]")
        if trigger.get_attribute("aria-expanded") != "true":
            trigger.click()
        section.locator("[data-scope=field][data-part=root]").first.wait_for()
        return section

    def section_of(self, name: str) -> str:
        """The title of the section that holds param ``name``."""
        section = self._sections.filter(has=self._label(name))
        return section.locator("[data-scope=accordion][data-part=item-trigger]").inner_text().strip()

    @property
    def unpause_on_trigger(self) -> Locator:
        return self.dialog.get_by_role("checkbox", name=re.compile(r"^Unpause .* on trigger$"))

    @property
    def submit_button(self) -> Locator:
        return self.dialog.get_by_test_id("trigger-dag-submit")

    def descriptions(self) -> dict[str, str]:
        """Each param's name, as its field is labelled, and the description shown under the field, section
        by section."""
        shown = {}
        for section in self._sections.all():
            for field in self._open(section).locator("[data-scope=field][data-part=root]").all():
                label = field.locator("[data-scope=field][data-part=label]").inner_text()
                shown[label.rstrip(" *\n")] = field.locator("[data-part=helper-text]").inner_text()
        return shown

    def _label(self, name: str) -> Locator:
        return self.dialog.page.locator(
            "[data-scope=field][data-part=label]", has_text=re.compile(rf"^{re.escape(name)}\b")
        )

    def field(self, name: str) -> Locator:
        """Param ``name``'s field, its section opened."""
        section = self._open(self._sections.filter(has=self._label(name)))
        return section.locator("[data-scope=field][data-part=root]").filter(has=self._label(name))

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


@dataclass(frozen=True)
class BackfillForm(TriggerForm):
    """The Trigger dialog switched to Backfill: a date range, how to treat existing runs, and the params."""

    def date_range(self, start: str, end: str) -> None:
        """``start`` and ``end`` as YYYY-MM-DD, midnight UTC, typed into the From and To pickers."""
        page = self.dialog.page
        for picker, day in zip(self.dialog.get_by_test_id("datetime-input").all(), (start, end), strict=True):
            picker.click()
            expect(picker).to_have_attribute("aria-expanded", "true")
            popover = page.locator(f"[id='{picker.get_attribute('aria-controls')}']")
            popover.get_by_placeholder("YYYY/MM/DD").fill(day.replace("-", "/"))
            popover.get_by_placeholder("HH:mm").fill("00:00")
            page.keyboard.press("Escape")
            expect(picker).to_have_attribute("aria-expanded", "false")
            expect(picker).to_have_text(f"{date.fromisoformat(day):%b %d, %Y} 00:00")

    def reprocess(self, behavior: str) -> None:
        """``Missing Runs``, ``Missing and Errored Runs`` or ``All Runs``."""
        self.dialog.get_by_text(behavior, exact=True).click()

    def send_params(self) -> None:
        """Tick *Override parameters on existing runs*: without it Airflow 3.3's dialog sends no conf at all,
        and every run of the backfill takes the params' defaults."""
        label = "Override parameters on existing runs"
        self.dialog.get_by_text(label, exact=True).click()
        expect(self.dialog.get_by_role("checkbox", name=label)).to_be_checked()

    def max_active_runs(self, runs: int) -> None:
        field = self.dialog.locator("input[name=max_active_runs]")
        field.fill(str(runs))
        field.blur()

    def submit_backfill(self) -> None:
        """Press Run Backfill; the UI confirms and closes the dialog."""
        self.dialog.get_by_role("button", name="Run Backfill").click()
        self.dialog.page.get_by_text("Backfill generated").wait_for()
