"""Click parameter types shared by the commands."""

from __future__ import annotations

import math

import click


class FiniteFloat(click.FloatRange):
    """A number option that refuses nan and inf, which click's FloatRange lets through (nan passes every bound):
    a usage error naming the option, not an OverflowError traceback deep in a schedule."""

    name = "float"  # FloatRange's 'float range': --help's metavar and "'abc' is not a valid float range."

    def convert(self, value, param, ctx) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number

    def _describe_range(self) -> str:
        if self.min is None and self.max is None:  # click would write x<=None
            return "finite"
        return super()._describe_range()
