"""A run's identity, what a resume must find unchanged (:class:`RunMeta`), and how a method's recorded settings are
compared with its settings now (:func:`changed_settings`): pure data, stored by :mod:`zoaf.history` in a history's
``meta`` table and compared by a resume (``run.py``), sign-off and ``zoaf compare`` (``compareplan.py``)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class RunMeta:
    """What a resume must find unchanged: the problem (by content), method, budget, seed, options, and the
    method's settings that follow from them (a preset or a default changed since: another method).

    Stored as JSON in the ``meta`` table, one key per field (beside informative keys such as ``zoaf`` or
    ``started`` that are not compared). Settings are compared as :func:`changed_settings` does.
    """

    problem: Mapping[str, Any]
    method: str
    budget: int
    seed: int | None
    options: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)

    #: Problem keys that say where the problem was read from, not what it is: a run directory moved, or a
    #: netlist reached by another path (relative, absolute, through a symlink), still resumes.
    LOCATION = ("name", "netlist")
    #: Problem keys recorded since a later version (a corner run's ``corner_values``): a run recorded without one
    #: resumes as it did, where one recorded with it must match.
    ADDED = ("corner_values",)

    def as_json(self) -> dict[str, Any]:
        """The fields as stored (JSON round-trip: tuples become lists), so a comparison sees equal values equal."""
        d = asdict(self)
        d["options"] = {k: d["options"][k] for k in sorted(d["options"])}
        return json.loads(json.dumps(d, default=str))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunMeta | None":
        """The run metadata in ``data`` (a ``meta`` table), or None when it holds none; ValueError naming the
        field whose value is not of its kind (a history may come from elsewhere: zoaf would run with it)."""
        if any(k not in data for k in ("problem", "method", "budget", "seed", "options")):
            return None
        for name, value in (("problem", data["problem"]), ("options", data["options"]),
                            ("settings", data.get("settings") or {})):  # options "x" was said "no run metadata"
            if not isinstance(value, dict):
                raise ValueError(f"{name} {value!r} is not what zoaf writes")
        meta = cls(dict(data["problem"]), data["method"], data["budget"], data["seed"], dict(data["options"]),
                   dict(data.get("settings") or {}))
        kinds = {"method": (meta.method, str), "budget": (meta.budget, int), "seed": (meta.seed, (int, type(None))),
                 "problem.objective": (meta.problem.get("objective"), (str, type(None))),
                 "problem.x0": (meta.problem.get("x0"), (str, type(None)))}
        for name, (value, kind) in kinds.items():
            if not isinstance(value, kind) or isinstance(value, bool):
                raise ValueError(f"{name} {value!r} is not what zoaf writes")
        if (meta.seed or 0) < 0:        # -1 was refused as the caller's "seed must be a whole number >= 0"
            raise ValueError(f"seed {meta.seed} is not what zoaf writes")
        return meta

    def differences(self, recorded: "RunMeta") -> list[tuple[str, Any, Any]]:
        """(field, recorded value, this value) for each field that differs (``problem.<key>`` for the problem's
        own, ``settings.<name>`` for a setting), locations ignored."""
        now, then = self._flat(), recorded._flat()
        added = {f"problem.{k}" for k in self.ADDED} - then.keys()
        fields_ = [(k, then.get(k), now.get(k)) for k in sorted(now.keys() | then.keys())
                   if now.get(k) != then.get(k) and k not in added]
        return fields_ + [(f"settings.{k}", a, b) for k, a, b in changed_settings(recorded.settings, self.settings)]

    def _flat(self) -> dict[str, Any]:
        d = self.as_json()
        problem = d.pop("problem")
        d.pop("settings")
        return {**d, **{f"problem.{k}": v for k, v in problem.items() if k not in self.LOCATION}}


def changed_settings(recorded: Mapping[str, Any], now: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(name, recorded value, value now) of each setting of a method that a run recorded with another value
    than the method has now (JSON values compared). A name on one side only is not a change: a setting added to
    a method keeps the old behaviour by default (the project's rule), and a run recorded before settings were
    recorded has none."""
    a, b = json.loads(json.dumps(dict(recorded), default=str)), json.loads(json.dumps(dict(now), default=str))
    return [(k, a[k], b[k]) for k in sorted(a.keys() & b.keys()) if a[k] != b[k]]
