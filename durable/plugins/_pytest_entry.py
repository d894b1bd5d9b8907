"""What pytest autoloads as ``durable``: the plugin, by its module's own name.

The entry point names this shim rather than :mod:`durable.plugins.pytest`, so
that the plugin is registered under its module name: a ``conftest.py`` that
also lists ``pytest_plugins = ["durable.plugins.pytest"]`` then finds it
loaded, instead of pytest refusing one module under two names, and
``-p no:durable`` still turns it off.
"""

pytest_plugins = ["durable.plugins.pytest"]
