"""durable.ui._data: the list's pages by cursor, and previews, without a server."""

from __future__ import annotations

import pytest

import durable
from tests.ui.conftest import EXTRA, checkout

pytest.importorskip("starlette", reason=EXTRA)

from durable.ui._data import FilterError, Filters, Previews, list_page


def test_pages_by_cursor_show_every_workflow_once(runtime: durable.Runtime) -> None:
    for n in range(7):
        checkout.run_sync(f"item-{n}", n, workflow_id=f"w-{n}")
    store = runtime.store
    seen: list[str] = []
    filters = Filters(statuses=("success",))
    while True:
        page = list_page(store, filters, size=3)
        seen += [w.workflow_id for w in page.rows]
        if page.next_cursor is None:
            break
        filters = Filters(statuses=("success",), cursor=page.next_cursor)
    assert seen == [w.workflow_id for w in store.list_workflows(status="success")]
    assert len(seen) == 7
    assert page.counts == {"success": 7}
    with pytest.raises(FilterError, match="not a page cursor"):
        list_page(store, Filters(cursor="yesterday"))
    with pytest.raises(FilterError, match="since"):
        list_page(store, Filters(since="not a time"))


def test_filters_round_trip_through_the_query_string() -> None:
    filters = Filters.of({"name": " a.b ", "queue": "q"}, ["error", "bogus", "running"])
    assert filters == Filters(statuses=("error", "running"), name="a.b", queue="q")
    assert (
        filters.query(cursor="1.5:x")
        == "status=error&status=running&name=a.b&queue=q&cursor=1.5%3Ax"
    )


def test_previews_say_why_a_value_is_hidden() -> None:
    hidden = Previews(signed=False, trusted=False).show(lambda: 1 / 0)
    assert hidden.text is None
    assert "no secret key is configured" in (hidden.hidden or "")
    trusted = Previews(signed=False, trusted=True)
    assert trusted.show(lambda: {"a": 1}).text == "{'a': 1}"
    assert "ZeroDivisionError" in (trusted.show(lambda: 1 / 0).text or "")
    assert len(trusted.show(lambda: "x" * 10_000).text or "") == 2000
