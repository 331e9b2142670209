"""The worker portal over HTTP, as a worker's browser uses it, and as someone trying to get around it would.

The first tests walk the work itself: sign in, see the job, start, label, get the next task, skip, release,
sign out. The rest each try to break one protection: cookies, CSRF, sign-in throttling, other workers'
tasks, other teams' jobs, answer checks, escaping, signed image URLs and the pages' headers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from local_aws.portal.image_urls import IMAGE_URL_TTL_S
from local_aws.portal.responses import CONTENT_SECURITY_POLICY
from local_aws.portal.sessions import SESSION_TTL_S
from local_aws.workforce.task_queue import TaskQueue
from tests.local_aws.portal_fixtures import (
    HEIGHT,
    HOSTILE_LABEL,
    IMAGES,
    JOB,
    PASSWORD,
    TASK_TIME_LIMIT_S,
    WIDTH,
    Portal,
    box,
    box_answer,
    csrf_field,
    csrf_meta,
    make_portal,
    png,
    sign_in,
    signed_in,
)

TASK_URL = re.compile(r"^/tasks/(\d+)$")
IMAGE_URL = re.compile(r'src="(/task-images/[^"]+)"')


@pytest.fixture
def portal(tmp_path: Path, moto_s3_port: int) -> Iterator[Portal]:
    portal = make_portal(tmp_path, moto_s3_port)
    yield portal
    portal.db.close()


def start(client: TestClient, csrf: str, job: str = JOB) -> Any:
    return client.post(f"/jobs/{job}/start", data={"csrf_token": csrf})


def started_task(client: TestClient, csrf: str) -> int:
    response = start(client, csrf)
    assert response.status_code == 303, response.text
    found = TASK_URL.match(response.headers["location"])
    assert found is not None, response.headers["location"]
    return int(found.group(1))


def submit(client: TestClient, task_id: int, answer: Any, csrf: str | None, **headers: str) -> Any:
    sent = {"Content-Type": "application/json", **({"X-CSRF-Token": csrf} if csrf is not None else {})}
    return client.post(f"/tasks/{task_id}/submit", content=json.dumps(answer), headers={**sent, **headers})


def task_state(portal: Portal, task_id: int) -> str:
    return (
        portal.db.connection()
        .execute("SELECT state FROM private_tasks WHERE id = ?", (task_id,))
        .fetchone()[0]
    )


def test_the_portal_answers_its_health_check(portal: Portal) -> None:
    response = portal.client().get("/_local/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_a_worker_signs_in_labels_every_image_and_is_told_when_the_job_has_no_more(portal: Portal) -> None:
    client = portal.client()
    assert client.get("/").headers["location"] == "/sign-in"

    signing_in = sign_in(client, "Alice")  # names are found regardless of case
    assert signing_in.status_code == 303
    assert signing_in.headers["location"] == "/"
    jobs = client.get("/")
    assert jobs.status_code == 200
    assert "Bird boxes" in jobs.text
    assert "Draw a box around each bird" in jobs.text
    assert "3 tasks waiting" in jobs.text
    assert ">Start working</button>" in jobs.text
    csrf = csrf_field(jobs.text)

    task_id = started_task(client, csrf)
    page = client.get(f"/tasks/{task_id}")
    assert page.status_code == 200
    assert csrf_meta(page.text) == csrf
    assert f'<meta name="crowd-submit-url" content="/tasks/{task_id}/submit">' in page.text
    assert '<script src="/static/crowd-html-elements.js"></script>' in page.text
    assert '<crowd-bounding-box\n    name="boundingBox"' in page.text
    for button in (">Skip</button>", ">Release</button>", ">Sign out</button>"):
        assert button in page.text
    assert re.search(r'data-deadline="\d+">10:00<', page.text), "the time left, counted from the deadline"
    image_url = IMAGE_URL.search(page.text).group(1)
    image = client.get(image_url)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.headers["cache-control"] == f"private, max-age={IMAGE_URL_TTL_S}"
    assert image.content == png(WIDTH, HEIGHT)
    assert f'href="/tasks/{task_id}"' in client.get("/").text and ">Continue</a>" in client.get("/").text

    answered = []
    for number in range(IMAGES):
        answer = box_answer([box(left=number, top=number)])
        response = submit(client, task_id, answer, csrf)
        assert response.status_code == 200, response.text
        answered.append(task_id)
        following = response.json()["next"]
        if number < IMAGES - 1:
            task_id = int(TASK_URL.match(following).group(1))
            assert task_id not in answered
    assert following == f"/?notice=done&job={JOB}"
    assert f"You have done every task waiting for you in {JOB}." in client.get(following).text

    stored = TaskQueue(portal.db).answers(JOB, list(range(IMAGES)))
    assert [[a.answer for a in stored[n]] for n in range(IMAGES)] == [
        [box_answer([box(left=n, top=n)])] for n in range(IMAGES)
    ]
    assert {a.worker_name for answers in stored.values() for a in answers} == {"alice"}

    signing_out = client.post("/sign-out", data={"csrf_token": csrf})
    assert signing_out.headers["location"] == "/sign-in?notice=signed-out"
    assert "You signed out." in client.get(signing_out.headers["location"]).text
    assert client.get("/").headers["location"] == "/sign-in"


def test_skip_hands_the_next_image_and_release_returns_the_task_to_the_queue(portal: Portal) -> None:
    alice, csrf = signed_in(portal, "alice")
    first = started_task(alice, csrf)
    skipped = alice.post(f"/tasks/{first}/skip", data={"csrf_token": csrf})
    assert skipped.status_code == 303
    second = int(TASK_URL.match(skipped.headers["location"]).group(1))
    assert second != first
    assert task_state(portal, first) == "skipped"

    released = alice.post(f"/tasks/{second}/release", data={"csrf_token": csrf})
    assert released.headers["location"] == f"/?notice=released&job={JOB}"
    assert f"Your task of {JOB} went back to the queue." in alice.get(released.headers["location"]).text
    assert task_state(portal, second) == "released"

    # Alice never gets an image twice: one left for her; bob can take all three.
    third = started_task(alice, csrf)
    assert third not in (first, second)
    assert alice.post(f"/tasks/{third}/skip", data={"csrf_token": csrf}).headers["location"] == (
        f"/?notice=empty&job={JOB}"
    )
    assert f"No tasks are waiting in {JOB}." in alice.get(f"/?notice=empty&job={JOB}").text
    assert start(alice, csrf).headers["location"] == f"/?notice=empty&job={JOB}"
    bob, _ = signed_in(portal, "bob")
    assert "3 tasks waiting" in bob.get("/").text


def test_notices_are_fixed_texts_and_never_echo_what_a_link_carries(portal: Portal) -> None:
    alice, _ = signed_in(portal, "alice")
    page = alice.get("/", params={"notice": "Your account is locked, call 555-0100", "job": JOB}).text
    assert "555-0100" not in page
    page = alice.get("/", params={"notice": "empty", "job": "<b>evil</b> job"}).text
    assert "evil" not in page and "No tasks are waiting" not in page


def test_session_cookies_are_httponly_strict_secure_on_https_and_stored_only_hashed(portal: Portal) -> None:
    client = portal.client()
    form = client.get("/sign-in")
    login_cookie = form.headers["set-cookie"].lower()
    assert login_cookie.startswith("portal_csrf=")
    assert "httponly" in login_cookie and "samesite=strict" in login_cookie

    response = sign_in(client, "alice")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("portal_session=")
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/", f"max-age={SESSION_TTL_S}"} <= flags
    assert "secure" not in flags  # over plain http the browser would not send it back
    token = cookie.split(";")[0].split("=", 1)[1]
    assert len(token) >= 43  # 32 random bytes
    stored = [tuple(row) for row in portal.db.connection().execute("SELECT * FROM portal_sessions")]
    assert stored and token not in repr(stored)
    assert stored[0][0] == hashlib.sha256(token.encode()).hexdigest()

    https = TestClient(portal.app, base_url="https://testserver", follow_redirects=False)
    secure = {part.strip().lower() for part in sign_in(https, "bob").headers["set-cookie"].split(";")}
    assert "secure" in secure

    portal.clock.advance(SESSION_TTL_S + 1)
    assert client.get("/").headers["location"] == "/sign-in", "a session ends after 8 hours"


def test_every_post_without_the_right_csrf_token_is_refused(portal: Portal) -> None:
    client = portal.client()
    form = client.get("/sign-in")
    for token in (None, "wrong", csrf_field(form.text) + "x"):
        data = {"name": "alice", "password": PASSWORD} | ({"csrf_token": token} if token else {})
        assert client.post("/sign-in", data=data).status_code == 403
    stranger = portal.client()  # a cross-site form post carries no portal_csrf cookie
    assert (
        stranger.post(
            "/sign-in", data={"csrf_token": csrf_field(form.text), "name": "alice", "password": PASSWORD}
        ).status_code
        == 403
    )
    assert portal.db.connection().execute("SELECT count(*) FROM portal_sessions").fetchone()[0] == 0

    alice, csrf = signed_in(portal, "alice")
    task_id = started_task(alice, csrf)
    other_session = signed_in(portal, "alice")[1]  # another session's token is not this one's
    for wrong in ({}, {"csrf_token": "wrong"}, {"csrf_token": other_session}):
        assert start(alice, wrong.get("csrf_token", "")).status_code == 403
        for action in ("skip", "release"):
            assert alice.post(f"/tasks/{task_id}/{action}", data=wrong).status_code == 403
        assert alice.post("/sign-out", data=wrong).status_code == 403
    for header in (None, "wrong", other_session):
        refused = submit(alice, task_id, box_answer([box()]), header)
        assert refused.status_code == 403
        assert "did not come from the portal" in refused.json()["error"]
    # The token in the form body does not stand in for the submit's header.
    refused = alice.post(f"/tasks/{task_id}/submit", data={"csrf_token": csrf})
    assert refused.status_code == 403
    assert task_state(portal, task_id) == "active"
    assert alice.get("/").status_code == 200, "still signed in"


def test_sign_in_is_throttled_per_account_before_the_password_is_checked(portal: Portal) -> None:
    client = portal.client()
    bad_name = sign_in(client, "nobody", PASSWORD)
    bad_password = sign_in(client, "alice", "not the password")
    assert bad_name.status_code == bad_password.status_code == 401
    assert "The name or password is not right." in bad_name.text
    assert "The name or password is not right." in bad_password.text

    for _ in range(4):
        assert sign_in(client, "alice", "not the password").status_code == 401
    refused = sign_in(client, "ALICE", PASSWORD)  # the right password, after 5 failures
    assert refused.status_code == 429
    assert "Too many failed sign-ins. Try again in 15 minutes." in refused.text
    assert 0 < int(refused.headers["retry-after"]) <= 15 * 60
    assert "set-cookie" not in refused.headers or "portal_session" not in refused.headers["set-cookie"]
    assert sign_in(portal.client(), "bob").status_code == 303, "other accounts are not locked out"

    portal.clock.advance(15 * 60 + 1)
    assert sign_in(client, "alice").status_code == 303


def test_sign_in_is_throttled_per_client_address(portal: Portal) -> None:
    client = portal.client()
    for number in range(20):
        assert sign_in(client, f"guess{number}", "not the password").status_code == 401
    refused = sign_in(client, "carol")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0


def test_another_workers_task_cannot_be_seen_answered_skipped_or_released(portal: Portal) -> None:
    alice, alice_csrf = signed_in(portal, "alice")
    task_id = started_task(alice, alice_csrf)
    image_url = IMAGE_URL.search(alice.get(f"/tasks/{task_id}").text).group(1)
    bob, bob_csrf = signed_in(portal, "bob")

    page = bob.get(f"/tasks/{task_id}")
    assert page.status_code == 404
    assert "There is no such task among yours." in page.text
    refused = submit(bob, task_id, box_answer([box()]), bob_csrf)
    assert refused.status_code == 409
    assert refused.json() == {"error": "There is no such task among yours."}
    for action in ("skip", "release"):
        response = bob.post(f"/tasks/{task_id}/{action}", data={"csrf_token": bob_csrf})
        assert response.status_code == 409
        assert "There is no such task among yours." in response.text
    image = bob.get(image_url)
    assert image.status_code == 403
    assert image.text == "This image link was issued to another worker."
    assert portal.client().get(image_url).status_code == 403, "not signed in"
    assert task_state(portal, task_id) == "active"
    assert bob.get("/nonexistent").status_code == 404


def test_a_worker_of_another_team_sees_no_job_and_cannot_start_one(portal: Portal) -> None:
    carol, csrf = signed_in(portal, "carol")
    jobs = carol.get("/")
    assert "Bird boxes" not in jobs.text
    assert "No labeling jobs are open for your teams right now." in jobs.text
    refused = start(carol, csrf)
    assert refused.status_code == 404
    assert "There is no open job of that name for your teams." in refused.text
    assert portal.db.connection().execute("SELECT count(*) FROM private_tasks").fetchone()[0] == 0


REFUSED_ANSWERS: list[tuple[Any, str]] = [
    (box_answer([box(left=100, width=30)]), "Box 1 runs past the image's right edge"),
    (box_answer([box(), box(top=70, height=20)]), "Box 2 runs past the image's bottom edge"),
    (box_answer([box(left=-1)]), "Box 1 starts outside the image"),
    (box_answer([box(width=0)]), "Box 1 must be at least 1 pixel wide and high"),
    (box_answer([box(label="Cat")]), "Box 1: label 'Cat' is not one of the job's labels"),
    (box_answer([box(left=1.5)]), "Box 1: left must be a whole number of pixels, got 1.5"),
    (box_answer([box(top="3")]), "Box 1: top must be a whole number of pixels, got '3'"),
    (box_answer([box(width=True)]), "Box 1: width must be a whole number of pixels, got True"),
    (box_answer([box()] * 101), "An answer has at most 100 boxes; this one has 101"),
    (
        box_answer([box()], width=WIDTH + 1),
        f"inputImageProperties must be the image's size, width {WIDTH}",
    ),
    (box_answer([box() | {"score": 1}]), "Box 1 has unexpected keys ['score']"),
    (box_answer([{"label": "Bird", "left": 1, "top": 1, "width": 1}]), "Box 1 is missing ['height']"),
    (box_answer([box()]) | {"extra": {}}, 'exactly one key, "boundingBox"'),
    ({"boxes": box_answer([box()])["boundingBox"]}, 'exactly one key, "boundingBox"'),
    ({"boundingBox": {**box_answer([])["boundingBox"], "note": 1}}, "has unexpected keys ['note']"),
    (
        {
            "boundingBox": {
                "boundingBoxes": {},
                "inputImageProperties": {"height": HEIGHT, "width": WIDTH},
            }
        },
        "boundingBoxes must be a list",
    ),
    ([], 'exactly one key, "boundingBox"'),
]


def test_answers_that_are_not_boxes_inside_the_image_with_the_jobs_labels_are_refused(portal: Portal) -> None:
    alice, csrf = signed_in(portal, "alice")
    task_id = started_task(alice, csrf)
    for answer, message in REFUSED_ANSWERS:
        refused = submit(alice, task_id, answer, csrf)
        assert refused.status_code == 400, message
        assert message in refused.json()["error"]
    assert task_state(portal, task_id) == "active"
    assert submit(alice, task_id, box_answer([box(left=90, top=60)]), csrf).status_code == 200, "edge to edge"


def test_a_body_that_is_too_large_or_not_json_is_refused_before_it_is_read_as_an_answer(
    portal: Portal,
) -> None:
    alice, csrf = signed_in(portal, "alice")
    task_id = started_task(alice, csrf)
    huge = box_answer([box(label="x" * 70_000)])
    refused = submit(alice, task_id, huge, csrf)
    assert refused.status_code == 413
    assert refused.json() == {"error": "The request is larger than 64 KiB."}

    def chunks() -> Iterator[bytes]:  # no Content-Length: the bytes read are counted
        yield b'{"boundingBox": "'
        for _ in range(70):
            yield b"x" * 1024
        yield b'"}'

    streamed = alice.post(
        f"/tasks/{task_id}/submit",
        content=chunks(),
        headers={"Content-Type": "application/json", "X-CSRF-Token": csrf},
    )
    assert streamed.status_code == 413
    not_json = alice.post(
        f"/tasks/{task_id}/submit",
        content=b"{not json",
        headers={"Content-Type": "application/json", "X-CSRF-Token": csrf},
    )
    assert not_json.status_code == 400 and not_json.json() == {"error": "The answer is not valid JSON."}
    as_form = submit(alice, task_id, box_answer([box()]), csrf, **{"Content-Type": "text/plain"})
    assert as_form.status_code == 415
    assert alice.post("/sign-out", data={"csrf_token": csrf, "pad": "x" * 20_000}).status_code == 413
    assert task_state(portal, task_id) == "active"


def test_labels_and_titles_are_escaped_and_the_page_loads_nothing_from_elsewhere(portal: Portal) -> None:
    alice, csrf = signed_in(portal, "alice")
    jobs = alice.get("/").text
    assert "<script>alert(1)" not in jobs
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in jobs
    task_id = started_task(alice, csrf)
    page = alice.get(f"/tasks/{task_id}")
    assert "<script>alert(1)" not in page.text
    assert "alert(1)" in page.text  # shown, as text
    assert '"hi"' not in page.text  # quotes escaped wherever a label or title appears
    assert page.text.count("<script") == 2  # the portal's crowd elements and portal.js
    assert "assets.crowd.aws" not in page.text
    for response in (page, alice.get("/"), portal.client().get("/sign-in")):
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"
    # A hostile label is still a label: boxes may carry it.
    assert submit(alice, task_id, box_answer([box(label=HOSTILE_LABEL)]), csrf).status_code == 200


def test_image_urls_expire_and_cannot_be_altered(portal: Portal) -> None:
    alice, csrf = signed_in(portal, "alice")
    task_id = started_task(alice, csrf)
    image_url = IMAGE_URL.search(alice.get(f"/tasks/{task_id}").text).group(1)
    payload, signature = image_url.removeprefix("/task-images/").split(".")
    other_image = portal.image_uri(2)

    import base64

    forged_payload = (
        base64.urlsafe_b64encode(json.dumps([other_image, "alice", 2**40], separators=(",", ":")).encode())
        .decode()
        .rstrip("=")
    )
    for token, message in [
        (f"{forged_payload}.{signature}", "This image link was not issued by the portal."),
        (f"{payload}.{signature[:-2]}AA", "This image link was not issued by the portal."),
        (payload, "This image link is malformed."),
        ("%%%.%%%", "This image link is malformed."),
    ]:
        refused = alice.get(f"/task-images/{token}")
        assert refused.status_code == 403
        assert refused.text == message

    portal.clock.advance(IMAGE_URL_TTL_S - 100)
    assert alice.get(image_url).headers["cache-control"] == "private, max-age=100"
    portal.clock.advance(100)
    expired = alice.get(image_url)
    assert expired.status_code == 403
    assert expired.text == "This image link has expired; reload the task to get a new one."
    fresh = IMAGE_URL.search(alice.get(f"/tasks/{task_id}").text).group(1)
    assert alice.get(fresh).status_code == 200


def test_a_task_past_its_time_limit_is_no_longer_the_workers(portal: Portal) -> None:
    alice, csrf = signed_in(portal, "alice")
    task_id = started_task(alice, csrf)
    portal.clock.advance(TASK_TIME_LIMIT_S + 1)
    page = alice.get(f"/tasks/{task_id}")
    assert page.status_code == 404
    assert "The task&#39;s time limit ran out" in page.text or "The task's time limit ran out" in page.text
    late = submit(alice, task_id, box_answer([box()]), csrf)
    assert late.status_code == 409
    assert "time limit ran out" in late.json()["error"]


def test_the_portal_secret_is_made_once_and_readable_by_its_owner_only(portal: Portal) -> None:
    secret = portal.config.data_dir / "portal" / "secret"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert len(secret.read_bytes()) == 32
    before = secret.read_bytes()
    from local_aws.portal.app import create_app

    create_app(portal.config, clock=portal.clock)
    assert secret.read_bytes() == before
