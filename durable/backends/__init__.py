"""Storage backends: the Backend contract and its implementations.

Backends are chosen by URL (see :func:`durable.configure`); the classes here
are not part of the public API.
"""
