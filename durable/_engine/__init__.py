"""The engine that runs durable workflows (``_core.py`` names its parts)."""
