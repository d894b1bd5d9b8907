"""Module-level workflows for durable.testing.kill_at (a subprocess imports them)."""

from __future__ import annotations

import os

import durable


def effect(line: str) -> None:
    with open(os.environ["SHOP_EFFECTS"], "a") as f:
        f.write(line + "\n")


@durable.step
async def reserve(item: str) -> str:
    effect(f"reserve {item}")
    return f"r-{item}"


@durable.step
async def charge(amount: int) -> str:
    effect(f"charge {amount}")
    return f"c-{amount}"


@durable.step
def ship(reservation: str) -> str:
    effect(f"ship {reservation}")
    return f"s-{reservation}"


@durable.durable_workflow(name="shop.checkout")
async def checkout(item: str, amount: int) -> list[str]:
    return [await reserve(item), await charge(amount), ship(f"r-{item}")]
