"""``python -m durable``: the ``durable`` command line (see ``durable --help``)."""

from durable._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
