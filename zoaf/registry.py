"""Method name -> optimizer class. Names resolve lazily so that ``import zoaf`` does not import torch.

As Nevergrad's registry: one table, collisions refused, ``zoaf.registry.register`` adds a method.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from .errors import InputError, did_you_mean
from .optim import Optimizer

_METHODS: dict[str, str | type[Optimizer]] = {
    "zoaf": "zoaf.zo.optimizer:ZOAF",
    "zoaf-cobyqa": "zoaf.zo.presets:ZOAFCobyqa",     # COBYQA as each start's local search (the [peers] extra)
    "random": "zoaf.baselines.random_search:RandomSearch",
    "bo": "zoaf.baselines.bo:BO",
    "turbo": "zoaf.baselines.turbo:TuRBO",
    "cma": "zoaf.baselines.cmaes:CMA",
    "cma-warm": "zoaf.baselines.cmaes:WarmCMA",
    "de": "zoaf.baselines.de:DE",
    # external peers (the [peers] extra): each library run as its users would, constraints in its own form
    "ngopt": "zoaf.baselines.nevergrad_peers:NGOpt",
    "ngcma": "zoaf.baselines.nevergrad_peers:NGCMA",
    "tpe": "zoaf.baselines.optuna_peer:TPE",
    "cobyqa": "zoaf.baselines.cobyqa_peer:COBYQA",
    "nomad": "zoaf.baselines.nomad_peer:NOMAD",
}


def methods() -> list[str]:
    return list(_METHODS)


def register(name: str, target: str | type[Optimizer]) -> None:
    """Add a method: ``target`` is an ``Optimizer`` subclass or ``"module:Class"`` (imported when first used).
    Refuses to overwrite a name, and a target of another kind here rather than at the first run that names it."""
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"a method name must be non-empty text, got {name!r}")
    if name in _METHODS:
        raise InputError(f"method {name!r} is already registered")
    named = isinstance(target, str) and target.count(":") == 1
    if not (named or isinstance(target, type) and issubclass(target, Optimizer)):
        raise InputError(f"method {name!r}: expected an Optimizer subclass or 'module:Class', got {target!r}")
    _METHODS[name] = target          # a class as it is: one defined in a function has no importable name


def get(name: str) -> type[Optimizer]:
    target = _METHODS.get(name) if isinstance(name, str) else None
    if target is None:
        raise InputError(f"unknown method {name!r}; {did_you_mean(name, _METHODS)}choose one of {', '.join(_METHODS)}")
    if not isinstance(target, str):
        return target
    module, cls = target.split(":")
    try:
        found = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as e:
        raise InputError(f"method {name!r}: cannot import {target!r} ({type(e).__name__}: {e})") from None
    if not (isinstance(found, type) and issubclass(found, Optimizer)):
        raise InputError(f"method {name!r}: {target!r} is no Optimizer subclass")
    return found


def available(name: str) -> type[Optimizer]:
    """The method's class, once its optional libraries are known to be installed: an ``InputError`` naming the
    extra that installs them otherwise (raised before a run starts, not as a traceback after its first batch)."""
    cls = get(name)
    missing = [m for m in cls.requires if not _installed(m)]
    if missing:
        raise InputError(f"method {name!r} needs {', '.join(missing)}, which is not installed: "
                         f"pip install 'zoaf[{cls.extra}]'")
    return cls


def installed() -> list[str]:
    """The methods whose optional libraries are installed (``zoaf compare``'s default)."""
    return [name for name in _METHODS if all(_installed(m) for m in get(name).requires)]


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):              # a parent package that fails, or a module blocked in sys.modules
        return False


def create(name: str, dim: int, budget: int, seed: int | None = None, **options: Any) -> Optimizer:
    """Instantiate a method; unknown options are an ``InputError`` naming the option."""
    cls = available(name)
    try:
        return cls(dim, budget, seed, **options)
    except TypeError as e:
        raise InputError(f"method {name!r}: {e}") from None
