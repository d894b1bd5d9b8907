"""What the dashboard's pages show, read from a store through its public API only.

Plain values for the templates: no Starlette here, so each page's data can be
built (and tested) without a server.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

from durable._cli._parse import parse_when
from durable._display import duration_text
from durable._errors import DurableError, PayloadIntegrityError
from durable._infos import History, HistoryEntry, SnapshotInfo, WorkflowInfo
from durable._records import StreamSummary, WorkflowStatus
from durable._store import Store

PAGE_SIZE = 50
"""Workflows on one page of the list."""
_TIES = 50
"""Rows read beyond a page to step over workflows created at the same instant."""
_CHILDREN = 200
"""Most child workflows drawn in a tree (deeper or further ones are counted, not drawn)."""
PREVIEW_CHARS = 2000


class FilterError(DurableError):
    """A filter of the list the user typed that cannot be read (a bad time)."""


@dataclasses.dataclass(frozen=True)
class Filters:
    """The list's filters, as the query string gives them."""

    statuses: tuple[str, ...] = ()
    name: str = ""
    queue: str = ""
    id_prefix: str = ""
    since: str = ""
    until: str = ""
    cursor: str = ""
    """``<created_at>:<workflow id>`` of the last row of the previous page."""

    @classmethod
    def of(cls, params: Mapping[str, Any], statuses: list[str]) -> Filters:
        """The filters in a query string (``statuses``: its repeated ``status`` values)."""
        known = {s.value for s in WorkflowStatus}
        return cls(
            statuses=tuple(s for s in statuses if s in known),
            **{
                f: str(params.get(f, "")).strip()
                for f in ("name", "queue", "id_prefix", "since", "until", "cursor")
            },
        )

    def query(self, **changes: str) -> str:
        """This query string, with ``changes`` (an empty value drops a parameter)."""
        from urllib.parse import urlencode

        pairs = [("status", s) for s in self.statuses]
        values = dataclasses.asdict(self) | changes
        pairs += [(k, v) for k, v in values.items() if k != "statuses" and v]
        return urlencode(pairs)


@dataclasses.dataclass(frozen=True)
class ListPage:
    """One page of the workflow list."""

    rows: list[WorkflowInfo]
    counts: dict[str, int]
    total: int
    next_cursor: str | None


def _when(text: str, name: str) -> float | None:
    if not text:
        return None
    try:
        return parse_when(text, name=name).timestamp()
    except ValueError as exc:
        raise FilterError(f"{name}: {exc}") from None


def list_page(
    store: Store,
    filters: Filters,
    size: int = PAGE_SIZE,
    counts: Callable[[], dict[str, int]] | None = None,
) -> ListPage:
    """A page of workflows, newest first, from the cursor on (queries on the store's indexes).

    The cursor is the creation time and id of the previous page's last row:
    the next page asks for what was created up to that instant (inclusive)
    and steps over the rows it already showed, so workflows created at the
    same instant are neither lost nor shown twice. ``counts`` gives the
    workflows by status (default: ``store.counts()``, read now).
    """
    until = _when(filters.until, "until")
    after: tuple[float, str] | None = None
    if filters.cursor:
        stamp, _, last_id = filters.cursor.partition(":")
        try:
            after = (float(stamp), last_id)
        except ValueError:
            raise FilterError(f"not a page cursor: {filters.cursor!r}") from None
        until = after[0] + 1e-6 if until is None else min(until, after[0] + 1e-6)
    found = store.list_workflows(
        status=list(filters.statuses) or None,
        name=filters.name or None,
        queue=filters.queue or None,
        id_prefix=filters.id_prefix or None,
        since=_when(filters.since, "since"),
        until=until,
        limit=size + 1 + (_TIES if after else 0),
    )
    if after is not None:
        found = [w for w in found if _after(w, after)]
    rows = found[:size]
    cursor = f"{rows[-1].created_at!r}:{rows[-1].workflow_id}" if len(found) > size else None
    by_status = counts() if counts is not None else store.counts()
    return ListPage(rows, by_status, sum(by_status.values()), cursor)


def _after(info: WorkflowInfo, after: tuple[float, str]) -> bool:
    """Whether ``info`` comes after the row ``after`` (newest first, then by id)."""
    stamp, last_id = after
    return info.created_at < stamp or (info.created_at == stamp and info.workflow_id > last_id)


@dataclasses.dataclass(frozen=True)
class Preview:
    """A payload's value as text, or why it is not shown."""

    text: str | None
    hidden: str | None = None


class Previews:
    """Whether and how the dashboard shows stored values (unpickling runs code).

    Values are shown when the store is opened with a secret key (the codec
    then verifies each payload's signature and refuses unsigned or tampered
    ones), or when the user started the dashboard trusting the store.
    """

    def __init__(self, *, signed: bool, trusted: bool) -> None:
        self.signed = signed
        self.trusted = trusted

    @property
    def allowed(self) -> bool:
        """Whether values may be unpickled at all."""
        return self.signed or self.trusted

    def why_hidden(self) -> str:
        """What the page says instead of a value when no value may be unpickled."""
        return (
            "value hidden: no secret key is configured, so its signature cannot be "
            "checked, and unpickling an unchecked payload can run any code. Start "
            "the dashboard with the store's secret key ($DURABLE_SECRET_KEY), or "
            "with --trust-store if you trust whoever writes to this store."
        )

    def show(self, load: Callable[[], Any]) -> Preview:
        """The value ``load()`` unpickles, as text; or why it is not shown."""
        if not self.allowed:
            return Preview(None, self.why_hidden())
        try:
            value = load()
        except PayloadIntegrityError as exc:
            return Preview(None, f"value hidden: its signature does not verify ({exc})")
        except BaseException as exc:  # the recorded error itself, re-raised
            if not isinstance(exc, Exception):
                raise
            return Preview(_short(_error_text(exc)))
        return Preview(_short(repr(value)))


def _error_text(exc: BaseException) -> str:
    import traceback

    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()


def _short(text: str) -> str:
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


@dataclasses.dataclass(frozen=True)
class Bar:
    """One attempt on the Gantt chart: where it starts and how wide, in percent of the span."""

    entry: HistoryEntry
    left: float
    width: float
    label: str


def gantt(history: History) -> tuple[list[Bar], str]:
    """A bar per step attempt on one time axis (the notebook's timeline), and the span."""
    if not history:
        return [], ""
    start = min(e.started_at for e in history)
    span = max(max(e.finished_at for e in history) - start, 1e-9)
    bars = []
    for e in history:
        left = (e.started_at - start) / span * 100
        width = min(max(e.duration / span * 100, 0.4), 100 - left)
        label = f"#{e.position} {e.name} (try {e.attempt}): {e.status}, {duration_text(e.duration)}"
        bars.append(Bar(e, round(left, 3), round(width, 3), label))
    return bars, duration_text(span)


@dataclasses.dataclass(frozen=True)
class Node:
    """A workflow in a tree of children."""

    info: WorkflowInfo
    children: list[Node]


def children_tree(store: Store, workflow_id: str, budget: list[int] | None = None) -> list[Node]:
    """The child workflows of a workflow, and theirs, up to :data:`_CHILDREN` in all."""
    budget = budget if budget is not None else [_CHILDREN]
    if budget[0] <= 0:
        return []
    kids = store.list_workflows(parent_id=workflow_id, limit=budget[0])
    budget[0] -= len(kids)
    nodes = [Node(k, children_tree(store, k.workflow_id, budget)) for k in reversed(kids)]
    return nodes


@dataclasses.dataclass(frozen=True)
class Keyed:
    """A published key or received event: its latest record and, if shown, its value."""

    name: str
    bytes: int
    at: float
    value: Preview | None = None


@dataclasses.dataclass(frozen=True)
class WorkflowPage:
    """Everything the page of one workflow shows."""

    info: WorkflowInfo
    owner_alive: bool | None
    outcome: Preview | None
    error: str | None
    history: History
    bars: list[Bar]
    span: str
    children: list[Node]
    snapshots: list[SnapshotInfo]
    published: list[Keyed]
    events: list[Keyed]
    streams: list[StreamSummary]
    now: float


def workflow_page(store: Store, info: WorkflowInfo, previews: Previews) -> WorkflowPage:
    """Read what the page of ``info`` shows (its history once; values only if allowed)."""
    history = store.history(info.workflow_id)
    bars, span = gantt(history)
    outcome = None
    if info.status in (WorkflowStatus.SUCCESS, WorkflowStatus.ERROR):
        outcome = previews.show(lambda: store.result(info.workflow_id))
    live = [e for e in history if not e.superseded and e.status != "retried"]
    failed = [e.error for e in live if e.error]
    published = _published(store, info.workflow_id, _latest(live, "publish"), previews)
    return WorkflowPage(
        info=info,
        owner_alive=store.owner_alive(info.workflow_id),
        outcome=outcome,
        error=failed[-1] if failed else None,
        history=history,
        bars=bars,
        span=span,
        children=children_tree(store, info.workflow_id),
        snapshots=snapshots_of(history),
        published=published,
        events=_latest(live, "event"),
        streams=store.streams(info.workflow_id),
        now=time.time(),
    )


def snapshots_of(history: History) -> list[SnapshotInfo]:
    """The live snapshots in a history, as :meth:`Store.snapshots` gives them (one read less)."""
    live = [e for e in history if not e.superseded and e.status != "retried"]
    return [
        SnapshotInfo(
            name=s.name,
            position=s.position,
            created_at=s.finished_at,
            steps=tuple(p.name for p in live if p.position < s.position and p.kind != "snapshot"),
        )
        for s in live
        if s.kind == "snapshot"
    ]


def _latest(entries: list[HistoryEntry], kind: str) -> list[Keyed]:
    latest: dict[str, Keyed] = {}
    for e in entries:
        if e.kind == kind:
            latest[e.name] = Keyed(e.name, e.payload_bytes, e.finished_at)
    return list(latest.values())


def _published(
    store: Store, workflow_id: str, keys: list[Keyed], previews: Previews
) -> list[Keyed]:
    """The published keys, each with its latest value when values may be shown."""
    if not keys or not previews.allowed:
        return keys
    values: dict[str, Any] = {}
    shown = previews.show(lambda: values.update(store.published(workflow_id)))
    if shown.hidden is not None or values == {}:
        failed = shown if shown.hidden is not None else Preview(None, shown.text)
        return [dataclasses.replace(k, value=failed) for k in keys]
    return [
        dataclasses.replace(k, value=Preview(_short(repr(values[k.name]))))
        for k in keys
        if k.name in values
    ]
