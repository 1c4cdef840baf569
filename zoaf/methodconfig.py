"""A method's configuration dataclass as users set it: its options checked before it is built, its fields as the
recorded settings a run keeps and a report shows.

Every method (ZOAF, the baselines, the peers) takes keyword options that fill a frozen config dataclass; a value of
the wrong type reached the method's own range rules (text compared with numbers) or the library (a popsize of
1e300 hung pycma, a negative NOMAD budget killed the process), so one check reads each field's annotation.
"""
from __future__ import annotations

import enum
import numbers
from dataclasses import fields
from typing import Any

import numpy as np

from .errors import InputError, did_you_mean

#: The largest budget: more simulations than any run makes; past it NOMAD's evaluation count overflows (at 2**31
#: the process died of a segmentation fault).
MAX_BUDGET = 2**31 - 1


#: A config field's metadata: a count of points the method draws at once (a population, an initial design), at most
#: the run's budget (:func:`within_budget`).
AT_MOST_BUDGET = {"at_most_budget": True}


def within_budget(config: Any, budget: int, label: str) -> None:
    """InputError for an :data:`AT_MOST_BUDGET` field of more points than the run's budget: no run simulates them,
    and the method drew them at once (cma ``popsize=10**9`` took 19 GiB, then hung; ``n_init`` a MemoryError)."""
    for f in fields(config):
        value = getattr(config, f.name)
        if f.metadata.get("at_most_budget") and value is not None and value > budget:
            raise InputError(f"{label} {f.name}={value}: more points than the run's budget of {budget} simulations; "
                             f"at most {budget}")


def settings(config: Any) -> dict[str, Any]:
    """A config dataclass's fields as plain values (enums by value), as reports show them."""
    return {f.name: (v.value if isinstance(v := getattr(config, f.name), enum.Enum) else v) for f in fields(config)}


def checked_options(config_class: type, options: dict[str, Any], label: str) -> dict[str, Any]:
    """A method's ``options`` checked against its config dataclass (``label``: ``"cma option"``) before it is built:
    an unknown name, a number or flag of the wrong type or an enum's unknown value is one ``InputError`` naming the
    option (a method's range rules compared text with numbers, a popsize of 1e300 hung, a bad enum was a ValueError)."""
    known = {f.name: f for f in fields(config_class) if f.init}
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise InputError(f"unknown {label}(s) {', '.join(unknown)}; {did_you_mean(unknown[0], known)}valid: "
                         f"{', '.join(sorted(known))}")
    return {name: typed_option(known[name], value, label) for name, value in options.items()}


def typed_option(f: Any, value: Any, label: str) -> Any:
    """``value`` of config field ``f`` checked against its annotation (``int | None``: a whole number of at most
    ``MAX_BUDGET`` or None) and its default's enum; whole numbers come back as ``int``."""
    if value is None and "None" in str(f.type):
        return value
    if isinstance(f.default, enum.Enum):
        try:
            return type(f.default)(value)
        except ValueError:
            raise InputError(f"{label} {f.name}={value!r}: must be one of "
                             f"{', '.join(str(m.value) for m in type(f.default))}") from None
    kinds = {k.strip() for k in str(f.type).split("|")} - {"None"}      # "float | tuple[...]": left to the config
    kind = kinds.pop() if len(kinds) == 1 else None
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = {"bool": isinstance(value, (bool, np.bool_)), "int": real and 0 <= value <= MAX_BUDGET
          and float(value).is_integer(), "float": real and bool(np.isfinite(value))}
    need = {"bool": "True or False", "int": f"a whole number from 0 to {MAX_BUDGET}",
            "float": "a finite number" if real else "a number"}
    if kind in ok and not ok[kind]:
        raise InputError(f"{label} {f.name}={value!r}: must be {need[kind]}")
    return int(value) if kind == "int" else bool(value) if kind == "bool" else value
