"""What a sqlite3 error means for a SQLite store, and what to do about it."""

from __future__ import annotations

BUSY_TIMEOUT_MS = 30_000
"""How long a writer waits for another one (SQLite's busy timeout)."""

_RESTORE = (
    "restore it from a copy (with its -wal file), or save what is still readable: "
    "sqlite3 {path} .recover | sqlite3 {path}.recovered, and point the store URL at that file"
)
# SQLite's primary result codes (sqlite3.Error.sqlite_errorcode, Python 3.11+;
# older Pythons fall back on the message).
_BUSY, _LOCKED, _READONLY, _CANTOPEN, _CORRUPT, _NOTADB = 5, 6, 8, 14, 11, 26


def busy(exc: BaseException) -> bool:
    """Whether SQLite answered that another connection holds a lock it needs."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (_BUSY, _LOCKED)
    return "locked" in str(exc)


def damage(exc: BaseException) -> bool:
    """Whether SQLite read the file as damaged."""
    code = getattr(exc, "sqlite_errorcode", None)
    return (isinstance(code, int) and code & 0xFF == _CORRUPT) or "malformed" in str(exc)


def damaged(path: str) -> str:
    """What to do about a damaged store file."""
    return f"the file {path} is damaged; " + _RESTORE.format(path=path)


def explain(exc: BaseException, path: str, read_only_why: str | None = None) -> str:
    """What a sqlite3 error means for the store at ``path``, and what to do.

    ``read_only_why`` says why the store was opened read-only, if it was.
    """
    text = str(exc)
    code = getattr(exc, "sqlite_errorcode", None)
    code = code & 0xFF if isinstance(code, int) else None
    if code == _NOTADB or "not a database" in text or "file is encrypted" in text:
        return (
            f"{path} is not a SQLite database ({text}): point the URL at a durable "
            "store; if this was one, " + damaged(path)
        )
    if code == _CORRUPT or "malformed" in text:
        return f"{text}: {damaged(path)}"
    if busy(exc) or "locked" in text:
        return (
            f"{text}: another process (or connection) held its write lock for over "
            f"{BUSY_TIMEOUT_MS // 1000} s (a long cleanup, a stopped process, a sqlite3 "
            "shell with a transaction open); try again once it lets go"
        )
    if code == _READONLY or "readonly" in text:
        why = read_only_why or "its file or folder is not writable"
        return (
            f"{text}: the store is open read-only ({why}); it can be listed and shown, "
            "not written (calling a workflow writes, even one that is done)"
        )
    if code == _CANTOPEN or "unable to open" in text:
        return f"{text}: is the path right, and are the file and its folder readable?"
    return text
