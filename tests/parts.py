"""The body of a factory fixture that yields running parts and stops each after the test."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

Part = TypeVar("Part")


def started(start: Callable[..., Part], stop: Callable[[Part], object]) -> Iterator[Callable[..., Part]]:
    """A factory of running parts for one test; after it, every part it started is stopped, the last first,
    each even when stopping another one failed."""
    with contextlib.ExitStack() as stack:

        def make(*args: Any, **kwargs: Any) -> Part:
            part = start(*args, **kwargs)
            stack.callback(stop, part)
            return part

        yield make
