"""Integrations with other tools; ``durable.plugins.pytest`` is the pytest plugin."""
