"""A workflow call's arguments: the fingerprint that names the call, and the pickled body."""

from __future__ import annotations

import inspect
import pickle
from typing import Any

from durable._errors import SerializationError
from durable._identity import fingerprint
from durable._serialization import pickle_value, plain
from durable._specs import MissingInstance, WorkflowSpec


def call_fingerprint(
    signature: inspect.Signature, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str:
    """Fingerprint a call by its bound arguments.

    So ``f(1)`` and ``f(x=1)`` (and a default passed explicitly) are one call.

    The instance of a method is not part of it: instances rarely pickle or
    compare stably, and the method's qualified name already tells the class.
    """
    arguments = _by_position(signature, instance, args) if not kwargs else None
    if arguments is None:
        try:
            if instance is not None:
                bound = signature.bind(instance, *args, **kwargs)
            else:
                bound = signature.bind(*args, **kwargs)
        except TypeError:
            return fingerprint(args, kwargs)  # the call itself will raise the TypeError
        arguments = dict(bound.arguments)
    # Arguments at their defaults do not count: f(1) is f(1, y=<default>), and
    # a default need not be picklable (a lock, a client).
    parameters = signature.parameters
    arguments = {
        name: value for name, value in arguments.items() if not is_default(parameters[name], value)
    }
    if instance is not None:
        arguments.pop(next(iter(parameters)), None)
    return fingerprint((), arguments)


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_SHAPES: dict[int, tuple[inspect.Signature, tuple[str, ...] | None, int]] = {}


def _by_position(
    signature: inspect.Signature, instance: Any, args: tuple[Any, ...]
) -> dict[str, Any] | None:
    """What ``signature.bind`` gives for a call by position alone, where that is plain.

    That is a call of a function whose parameters all take a position (no
    ``*args``, no keyword-only ones), with at most one value each and one
    for each without a default: then each value binds to its parameter in
    order. Binding through ``inspect`` costs more than the rest of
    fingerprinting a short call. None when it takes ``inspect``.
    """
    shape = _SHAPES.get(id(signature))
    if shape is None or shape[0] is not signature:
        parameters = signature.parameters.values()
        names = (
            tuple(p.name for p in parameters)
            if all(p.kind in _POSITIONAL for p in parameters)
            else None
        )
        required = sum(1 for p in parameters if p.default is inspect.Parameter.empty)
        shape = _SHAPES[id(signature)] = (signature, names, required)  # keeps it: its id stays
    names = shape[1]
    values = args if instance is None else (instance, *args)
    if names is None or not shape[2] <= len(values) <= len(names):
        return None
    return dict(zip(names, values, strict=False))  # a default for each parameter left


NAMED = ":by-name"
"""Ends the fingerprint of a call made by name (:class:`durable.Client`); a derived
workflow id takes the fingerprint's start, so it looks like any other."""


def named_fingerprint(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """Fingerprint a call made by name, without the workflow's signature: as given.

    A client that does not import the workflow cannot bind ``f(1)`` and
    ``f(x=1)`` to one call; its calls are marked so that a worker (or a
    later call) compares them as given instead.
    """
    # Apart from code's fingerprints (a call by keywords only would match one):
    # ids derived by a client never collide with ids derived in code.
    return fingerprint(("by-name", *args), kwargs)[: 64 - len(NAMED)] + NAMED


def is_default(parameter: inspect.Parameter, value: Any) -> bool:
    default = parameter.default
    if default is inspect.Parameter.empty:
        return False
    if value is default:
        return True
    try:
        return type(value) is type(default) and bool(value == default)
    except Exception:  # values whose == raises (arrays) are never "the default"
        return False


def args_body(
    spec: WorkflowSpec,
    signature: inspect.Signature,
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> bytes:
    if instance is None and plain(args) and plain(kwargs.values()):
        # What cloudpickle would give, without setting up its pickler.
        return pickle.dumps((None, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
    what = f"arguments of workflow {spec.name!r}"
    try:
        return pickle_value((instance, args, kwargs), what=what)
    except SerializationError as exc:
        if instance is None:
            raise unpicklable_argument(spec, signature, args, kwargs) or exc from exc.__cause__
        try:
            pickle_value((args, kwargs), what=what)
        except SerializationError as inner:
            bad = unpicklable_argument(spec, signature, args, kwargs, instance)
            raise bad or inner from inner.__cause__
    # An unpicklable instance (a service holding a client) still runs; only
    # recover() cannot rebuild the call, and says so.
    missing = MissingInstance(f"{type(instance).__module__}.{type(instance).__qualname__}")
    return pickle_value((missing, args, kwargs), what=what)


def unpicklable_argument(
    spec: WorkflowSpec,
    signature: inspect.Signature,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    instance: Any = None,
) -> SerializationError | None:
    """The error naming the first argument that does not pickle, by its parameter name."""
    try:
        bound = (
            signature.bind(instance, *args, **kwargs)
            if instance is not None
            else signature.bind(*args, **kwargs)
        ).arguments
    except TypeError:  # the call itself is wrong: name the arguments by position
        bound = {f"#{i + 1}": value for i, value in enumerate(args)} | kwargs
    if instance is not None:
        bound.pop(next(iter(signature.parameters)), None)
    for name, value in bound.items():
        try:
            pickle_value(value, what=f"argument {name!r}")
        except SerializationError as exc:
            type_name = exc.details.get("type_name", type(value).__qualname__)
            return SerializationError(
                f"cannot pickle the arguments of workflow {spec.name!r}: argument "
                f"{name!r} (a {type_name}) does not pickle "
                f"({type(exc.__cause__).__name__}: {exc.__cause__}). A "
                "workflow's arguments are recorded so that the call can be resumed: "
                "pass plain data instead (an id, a path, settings) and create the "
                "object inside the workflow or a step, or make its type picklable.",
                what=f"arguments of workflow {spec.name!r}",
                type_name=type_name,
                argument=name,
            )
    return None
