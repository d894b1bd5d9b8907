"""A script whose steps call a helper of its own, run under various runners (issue 14, item 4).

``main()`` runs ``job(3)``; ``CRASH_IN=two`` SIGKILLs the process inside
step ``two``; ``CHANGED=1`` changes the helper (a real code change). It prints
the CodeChangedWarnings it saw and the result, as JSON.
"""

from __future__ import annotations

import json
import os
import signal
import warnings

import durable


def effect(line: str) -> None:
    with open(os.environ["EFFECTS"], "a") as f:
        f.write(line + "\n")


if os.environ.get("CHANGED"):

    def helper(x: int) -> int:
        return x * 3

else:

    def helper(x: int) -> int:
        return x * 2


@durable.step
def one(x: int) -> int:
    effect("one")
    return helper(x)


@durable.step
def two(x: int) -> int:
    effect("two")
    if os.environ.get("CRASH_IN") == "two":
        os.kill(os.getpid(), signal.SIGKILL)
    return helper(x) + 1


@durable.durable_workflow
def job(x: int) -> int:
    return two(one(x))


def main() -> None:
    durable.configure(url=os.environ["DURABLE_URL"])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = job(3)
    changed = [str(w.message) for w in seen if issubclass(w.category, durable.CodeChangedWarning)]
    print(json.dumps({"result": result, "code_changed": changed, "id": job.id_for(3)}))


if __name__ == "__main__":
    main()
