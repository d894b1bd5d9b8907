"""The dashboard over HTTP: its pages, and who may change what (CSRF, origin, token, read-only)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import pytest

import durable
from tests.conftest import durable_command
from tests.ui.conftest import EXTRA, SECRET, running, seed

pytest.importorskip("starlette", reason=EXTRA)

from starlette.testclient import TestClient

import durable.ui


@pytest.fixture
def client(seeded: str) -> Iterator[TestClient]:
    with TestClient(durable.ui.app(seeded)) as client:
        yield client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


def ids_on(page: str) -> list[str]:
    return re.findall(r'<tr data-id="([^"]+)"', page)


def post(client: TestClient, action: str, **form: str) -> Any:
    return client.post(f"/action/{action}", data=form, follow_redirects=False)


def test_the_list_filters_and_counts(client: TestClient) -> None:
    page = client.get("/").text
    assert set(ids_on(page)) >= {"order-1", "order-2", "batch-1"}
    assert len(ids_on(page)) == 6  # three orders' worth of children too
    assert 'id="count-error">1<' in page
    assert ids_on(client.get("/?status=error").text) == ["order-2"]
    assert ids_on(client.get("/?id_prefix=order-").text) == ["order-2", "order-1"]
    assert len(ids_on(client.get("/?name=shop.checkout&status=success").text)) == 4
    assert ids_on(client.get("/?until=2000-01-01").text) == []
    assert len(ids_on(client.get("/?since=1h").text)) == 6
    bad = client.get("/?since=yesterday-ish")
    assert bad.status_code == 400
    assert "since:" in bad.text
    live = client.get("/?status=error&partial=1").text
    assert "<html" not in live
    assert ids_on(live) == ["order-2"]


def test_the_page_of_a_workflow(client: TestClient) -> None:
    page = client.get("/workflow", params={"id": "order-2"}).text
    assert "ValueError: card declined for 900" in page
    assert page.count('class="bar ') == 5  # reserve, snapshot, publish, charge twice
    assert 'data-snapshot="reserved"' in page
    assert "<code>stage</code>" in page  # a published key, its value hidden
    parent = client.get("/workflow", params={"id": "batch-1"}).text
    assert parent.count("shop.checkout <span") == 3  # its children, as a tree
    child = re.search(r'<li><a class="wf" href="/workflow\?id=([^"]+)"', parent)
    assert child is not None
    assert "batch-1" in client.get(f"/workflow?id={child.group(1)}").text  # its parent
    missing = client.get("/workflow", params={"id": "order-9"})
    assert missing.status_code == 404
    assert "No workflow order-9" in missing.text
    assert "Processes running workflows" in client.get("/queues").text
    metrics = client.get("/metrics").text
    assert "Workflows finished per" in metrics
    assert metrics.count("<rect") >= 6


@durable.durable_workflow(name="shop.feed")
def feed(n: int) -> int:
    for i in range(n):
        durable.write_stream_sync("lines", f"line {i}")
    durable.close_stream_sync("lines")
    with contextlib.suppress(durable.EventTimeoutError):
        durable.wait_for_event_sync("approval", timeout=0.01)  # recorded: it timed out
    return n


def test_streams_deadlines_and_events_of_a_workflow(client: TestClient, seeded: str) -> None:
    with durable.Runtime(seeded):
        feed.run_sync(3, workflow_id="feed-1", timeout=3600)
    page = client.get("/workflow?id=feed-1").text
    streams = page.split('id="streams"')[1]
    assert "<code>lines</code>" in streams
    assert '<td class="num">3</td>' in streams
    assert "ended" in streams
    assert 'id="deadline"' in page
    assert "(in " in page.split('id="deadline"')[1].split("</dd>")[0]
    assert "approval" in page.split('id="events"')[1].split("</section>")[0]


def test_queues_with_their_depth_and_limits(client: TestClient, seeded: str) -> None:
    with durable.Client(seeded) as jobs:
        for n in range(3):
            jobs.enqueue("shop.checkout", f"item-{n}", n, queue="mail")
        jobs.store.set_queue("mail", concurrency=2, rate_limit=(10, 60))
        jobs.store.pause_queue("mail")
    row = client.get("/queues").text.split('<tr data-queue="mail">')[1].split("</tr>")[0]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.DOTALL)
    assert cells[1:5] == ["3", "0", "0", "2"]  # enqueued, delayed, running, concurrency
    assert "10 per 60.00 s" in cells[7]
    assert "paused" in cells[8]
    assert ids_on(client.get("/?queue=mail&status=enqueued").text) != []


def test_values_are_previewed_only_when_signed_or_trusted(seeded: str, tmp_path: Any) -> None:
    with TestClient(durable.ui.app(seeded)) as client:
        page = client.get("/workflow?id=order-1").text
        assert "value hidden: no secret key is configured" in page
        assert "reserved book, charged 12" not in page
    with TestClient(durable.ui.app(seeded, trust_store=True)) as client:
        page = client.get("/workflow?id=order-1").text
        assert "&#39;reserved book, charged 12&#39;" in page
        assert "&#39;charging 12&#39;" in page  # the published value
        assert "ValueError: card declined for 900" in client.get("/workflow?id=order-2").text
    with TestClient(durable.ui.app(seeded, secret_key=SECRET)) as client:
        page = client.get("/workflow?id=order-1").text
        assert "value hidden: its signature does not verify" in page
        assert "reserved book, charged 12" not in page
    signed = f"sqlite:///{tmp_path / 'signed.db'}"
    seed(signed, secret_key=SECRET)
    with TestClient(durable.ui.app(signed, secret_key=SECRET)) as client:
        assert "&#39;reserved book, charged 12&#39;" in client.get("/workflow?id=order-1").text


def test_a_steps_value_on_demand(seeded: str) -> None:
    with TestClient(durable.ui.app(seeded)) as client:
        page = client.get("/workflow?id=order-1").text
        assert page.count('<details class="value"') == 3  # reserve, stage, charge
        hidden = client.get("/value", params={"id": "order-1", "position": 1}).text
        assert "value hidden: no secret key is configured" in hidden
    with TestClient(durable.ui.app(seeded, trust_store=True)) as client:
        shown = client.get("/value", params={"id": "order-1", "position": 1}).text
        assert "&#39;reserved book&#39;" in shown
        failed = client.get("/value", params={"id": "order-2", "position": 4}).text
        assert "ValueError: card declined for 900" in failed
        assert client.get("/value", params={"id": "order-1", "position": "x"}).status_code == 400
        missing = client.get("/value", params={"id": "order-1", "position": 99}).text
        assert "no live step record at position 99" in missing


def test_actions_need_the_pages_csrf_token_and_origin(client: TestClient) -> None:
    csrf = csrf_of(client.get("/workflow?id=order-1").text)
    refused = post(client, "fork", id="order-1", snapshot="reserved", new_id="copy")
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    wrong = post(client, "fork", id="order-1", snapshot="reserved", new_id="copy", csrf="x" * 43)
    assert wrong.status_code == 403
    elsewhere = client.post(
        "/action/fork",
        data={"id": "order-1", "snapshot": "reserved", "new_id": "copy", "csrf": csrf},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert elsewhere.status_code == 403
    assert "cross-site" in elsewhere.text
    assert client.get("/workflow?id=copy").status_code == 404
    done = post(client, "fork", id="order-1", snapshot="reserved", new_id="copy", csrf=csrf)
    assert done.status_code == 303
    shown = client.get(done.headers["location"]).text
    assert "forked order-1 at snapshot &#39;reserved&#39; into copy" in shown
    assert "forked from" in shown


def test_restore_resume_and_send_an_event(client: TestClient, seeded: str) -> None:
    csrf = csrf_of(client.get("/workflow?id=order-1").text)
    done = post(client, "restore", id="order-1", snapshot="reserved", csrf=csrf)
    page = client.get(done.headers["location"]).text
    assert "restored order-1 to snapshot &#39;reserved&#39;" in page
    assert "superseded" in page
    nothing = client.get(post(client, "resume", id="order-1", csrf=csrf).headers["location"])
    assert "nothing to do" in nothing.text
    sent = post(client, "event", id="order-2", key="approval", value='{"by": "ana"}', csrf=csrf)
    assert "sent &#39;approval&#39; to order-2" in client.get(sent.headers["location"]).text
    failed = post(client, "restore", id="order-1", snapshot="nope", csrf=csrf)
    assert "has no snapshot" in client.get(failed.headers["location"]).text


def test_cancel_a_running_workflow(client: TestClient, seeded: str) -> None:
    with running(seeded, "slow-1"):
        page = client.get("/workflow?id=slow-1").text
        assert "s-running" in page
        assert ", alive" in page
        assert 'id="lease"' in page
        workers = client.get("/queues").text
        assert "slow-1" in workers
        assert "(in " in workers.split('class="lease">')[1].split("</td>")[0]
        done = post(client, "cancel", id="slow-1", csrf=csrf_of(page))
        after = client.get(done.headers["location"]).text
        assert "cancelled slow-1 and its children" in after
        assert 'id="wf-status"><span class="status s-cancelled">' in after
    with durable.Store.open(seeded) as store:
        assert store.counts().get("cancelled") == 1


def test_read_only_mode_shows_no_action_and_refuses_them(seeded: str) -> None:
    with TestClient(durable.ui.app(seeded, read_only=True)) as client:
        page = client.get("/workflow?id=order-1").text
        assert 'id="read-only"' in page
        assert "/action/" not in page
        refused = post(client, "cancel", id="order-1", csrf="anything")
        assert refused.status_code == 403
        assert "read-only" in refused.text


def test_the_access_token(seeded: str) -> None:
    token = "t" * 32
    with TestClient(durable.ui.app(seeded, token=token)) as client:
        assert client.get("/").status_code == 401
        assert client.get("/static/app.js").status_code == 401
        assert client.get("/?token=wrong").status_code == 401
        entry = client.get(f"/?status=error&token={token}", follow_redirects=False)
        assert entry.status_code == 303
        assert entry.headers["location"] == "/?status=error"
        assert "HttpOnly" in entry.headers["set-cookie"]
        assert ids_on(client.get("/?status=error").text) == ["order-2"]  # the cookie
    with TestClient(durable.ui.app(seeded, token=token)) as client:
        assert client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_serving_beyond_loopback_needs_a_token(seeded: str) -> None:
    with pytest.raises(durable.ConfigurationError, match="without an access token"):
        durable.ui.serve(seeded, host="0.0.0.0")
    with pytest.raises(durable.ConfigurationError, match="at least 16 characters"):
        durable.ui.serve(seeded, host="0.0.0.0", token="short")


def test_the_command_refuses_a_public_address_without_a_token(
    seeded: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DURABLE_UI_TOKEN", raising=False)
    assert durable_command()(["--url", seeded, "ui", "--host", "0.0.0.0"]) == 1
    assert "without an access token" in capsys.readouterr().err


def test_mounted_in_a_service_with_a_token(seeded: str) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    token = "m" * 24
    # Starlette runs no mounted app's lifespan: the service owns the runtime and closes it.
    with durable.Runtime(seeded) as runtime:
        dashboard = durable.ui.app(runtime=runtime, token=token)
        service = Starlette(routes=[Mount("/ops", app=dashboard)])
        with TestClient(service) as client:
            entry = client.get(f"/ops/?status=error&token={token}", follow_redirects=False)
            assert entry.headers["location"] == "/ops/?status=error"
            page = client.get("/ops/workflow?id=order-1").text
            assert 'action="/ops/action/cancel"' in page
            assert 'href="/ops/static/app.js"' not in page  # a script tag, not a link
            assert 'src="/ops/static/app.js"' in page
            assert client.get("/ops/static/style.css").status_code == 200


def test_a_runtime_passed_in_is_left_open_for_its_owner(seeded: str) -> None:
    with durable.Runtime(seeded) as runtime:
        with TestClient(durable.ui.app(runtime=runtime, read_only=True)) as client:
            assert "order-2" in client.get("/?status=error").text
        # The dashboard's lifespan has ended; the runtime is still the service's to use.
        assert runtime.store.get_workflow("order-2") is not None


def test_a_runtime_and_a_url_or_options_together_are_refused(seeded: str) -> None:
    with durable.Runtime(seeded) as runtime:
        with pytest.raises(durable.ConfigurationError, match="url, secret_key"):
            durable.ui.app(seeded, runtime=runtime, secret_key=SECRET)
        with pytest.raises(durable.ConfigurationError, match="runtime= and lease_seconds"):
            durable.ui.app(runtime=runtime, lease_seconds=30)
