"""cloudpickle's pickler, set up for durable: imported when a value needs it.

:func:`durable._serialization.dumps` pickles a value made only of the types
pickle and cloudpickle write alike with pickle's own pickler; anything else
(an exception, a class instance, a function, a date) comes here. cloudpickle
(1.9 MiB with what it imports) is then loaded by the first such value, and a
sync script of plain values never loads it.
"""

from __future__ import annotations

import os
import pickle
import types
from collections.abc import Callable
from typing import Any

import cloudpickle

from durable import _registry


def dump(value: Any, file: Any, *, by_value: bool, live: Callable[..., Any]) -> None:
    """Pickle into ``file`` with cloudpickle, naming a script's classes and functions.

    ``live`` is the function that finds such a class or function again when
    unpickled (see ``_Pickler``): a payload refers to it by its module and name.
    """
    _Pickler(file, protocol=pickle.HIGHEST_PROTOCOL, by_value=by_value, live=live).dump(value)


class _Pickler(cloudpickle.Pickler):  # type: ignore[misc]
    """cloudpickle, except that a script's classes and functions resolve to the live ones.

    cloudpickle copies a class or function of ``__main__`` (a script, a
    notebook) by value, and unpickling that copy in the process that defines
    the class re-applies the recorded class dict to the live class: its
    methods are replaced, their decorators stripped (a workflow method becomes
    a plain function). In another process it builds a second class, whose
    instances are not instances of the script's. So such a class or function
    is named (module, qualified name) and looked up among the live ones when
    unpickled, like an importable one; the by-value copy rides along only for
    a process that does not define it (``durable show`` from the shell).
    """

    def __init__(
        self, file: Any, *, protocol: int, by_value: bool, live: Callable[..., Any]
    ) -> None:
        super().__init__(file, protocol=protocol)
        self._by_value = by_value
        self._live = live

    def reducer_override(self, obj: Any) -> Any:
        # A wrapt wrapper passes for a function here (isinstance follows its
        # __class__): so a decorated function is named, not copied bare.
        if isinstance(obj, (type, types.FunctionType)):
            module = getattr(obj, "__module__", None)
            if module in _registry.SCRIPT_MODULES:
                qualname = getattr(obj, "__qualname__", "")
                if isinstance(qualname, str):
                    found, where = _registry.find_in_file(module, qualname)
                    if found is obj:
                        if not self._by_value:  # a fingerprint: the same wherever it runs from
                            return self._live, (module, qualname, None)
                        script = os.path.abspath(where) if where is not None else None
                        return self._live, (module, qualname, _copy_by_value(obj), script)
        return super().reducer_override(obj)


def _copy_by_value(obj: Any) -> bytes | None:
    try:
        copy: bytes = cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # a class holding a wrapper that cannot be copied: by name only
        return None
    return copy


def plain_dumps(value: Any) -> bytes:
    """``cloudpickle.dumps`` of a value, as the stand-in for an unpicklable error is kept."""
    data: bytes = cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return data
