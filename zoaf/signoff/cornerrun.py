"""Corner runs: each sizing is simulated once per corner, through the Evaluator, and judged at its worst.

``CornerProblem`` is what the optimizer and the reports see (the design variables, one outcome per sizing).
``CornerSims`` is what the workers simulate: a point is a sizing plus a corner index (the last coordinate), so
every (sizing, corner) is one simulation, one history row, one cache entry, replayed exactly on resume.
``CornerEvaluator`` turns a batch of sizings into ``SizingRecord``s: with pruning, it first simulates every
sizing at the corner that was worst for the incumbent and simulates the other corners only of the sizings not
already worse than the incumbent there (the worst case never improves as corners are added, so a pruned sizing
can never be the best). The optimizer is told the pruned sizing's partial worst case, a lower bound. A batch cut
by Ctrl-C is kept as its completed simulations make it (:meth:`CornerEvaluator.cut_batch`).
"""
from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..circuit import CircuitProblem, _placeholders
from ..decktext import logical_lines, physical_lines
from ..errors import DeckFailure, InputError
from ..evaluate import BatchEvaluator, Evaluator, FailureWatch
from ..history import History, Record
from ..netlist import Netlist
from ..problem import Outcome, Problem
from .corners import Corner, WorstCase, process_params, worst_case

#: The ``.param`` that carries a corner's temperature (``.options temp={zoaf_temp}`` is added to the deck).
TEMP_PARAM = "zoaf_temp"
NOMINAL_TEMP = 27.0
_END = re.compile(r"^[^\S\n]*\.end[^\S\n]*$", re.I | re.M)
_OPTION_TEMP = re.compile(r"\btemp\s*=", re.I)


def corner_deck(base: CircuitProblem, process: str | None, with_temp: bool,
                params: Mapping[str, float] | None = None) -> CircuitProblem:
    """A copy of ``base`` whose netlist is read at PDK corner ``process`` (``{{corner}}``), with ``params``
    as ``.param`` lines at its end (a PDK's Monte Carlo switches) and, ``with_temp``, its temperature taken
    from ``.param zoaf_temp``."""
    spec = base.spec
    if process is None and not with_temp and not params:
        return base
    text = Path(base.netlist.path).read_bytes().decode(base.netlist.encoding)     # Latin-1 decks too
    if with_temp:
        refuse_own_temperature(text, base.netlist.path)
    added = "".join(f".param {k}={v!r}\n" for k, v in (params or {}).items())
    if with_temp:
        added += f".param {TEMP_PARAM}={NOMINAL_TEMP:g}\n.options temp={{{TEMP_PARAM}}}\n"
    if added:
        ends = list(_END.finditer(text))
        at = ends[-1].start() if ends else len(text)
        text = text[:at] + added + text[at:]
    holders = _placeholders(replace(spec, corner=process) if process is not None else spec)
    deck = copy.copy(base)
    deck._session = None
    deck.netlist = Netlist.from_text(text.encode(base.netlist.encoding), base.netlist.path,
                                     allow_shell=base.allow_shell, placeholders=holders)
    return deck


def refuse_own_temperature(text: str, path: Path) -> None:
    """A deck's own ``.temp`` card or ``.options temp=`` wins over the ``.options temp={zoaf_temp}`` a corner
    run appends (ngspice keeps the first): every corner would silently simulate at the deck's temperature."""
    in_control = False
    for ln in logical_lines(physical_lines(text))[1:]:
        word = ln.text.split(None, 1)[0].lower() if ln.text.split() else ""
        if word.startswith(".control") or word.startswith(".endc"):
            in_control = word.startswith(".control")
        elif not in_control and (word == ".temp" or (word.startswith(".option") and _OPTION_TEMP.search(ln.text))):
            raise InputError(f"{path}:{ln.lineno}: {ln.raw.strip()}: the deck sets its own temperature, which would "
                             "override every corner's temp ([corners] temp); remove it from the deck")


class CornerSims(Problem):
    """One simulation per (sizing, corner): the box's last coordinate is the corner's index (passed through)."""

    def __init__(self, base: CircuitProblem, corners: Sequence[Corner]) -> None:
        super().__init__(base.parameters)
        self.name, self.notes = base.name, base.notes      # the designer's deck's, not each corner deck's
        self.corners = tuple(corners)
        self.timeout = base.timeout             # the pool's limit per simulation (zoaf.evaluate.Evaluator)
        where = f"{base.spec.path or 'spec'}: corners"
        pdk = base.spec.pdk is not None
        with_temp = any(c.temp is not None for c in corners)
        self.decks: dict[str | None, CircuitProblem] = {}     # one deck per PDK process (generic: one deck)
        self.deck_keys: list[str | None] = []
        self.overrides: list[dict[str, float]] = []
        self.needs_new_process = False
        # The evaluator's watch on a deck failing alike everywhere (zoaf.evaluate.FailureWatch) reads these: a corner
        # run of a broken deck spent its whole budget, every corner of every sizing.
        self.netlist, self._needed = base.netlist, base.needed
        for c in self.corners:
            key = c.process if pdk else None
            if key not in self.decks:
                self.decks[key] = corner_deck(base, key, with_temp)
            self.deck_keys.append(key)
            self.overrides.append(corner_overrides(base, c, pdk, with_temp, f"{where}.{c.name}"))
        shared = tuple(dict.fromkeys(p for d in (base, *self.decks.values()) for p in d.netlist.reads()))
        for d in {id(d): d for d in (base, *self.decks.values())}.values():
            d.also_reads = shared                 # one worker simulates every corner's deck

    def deck(self, k: int) -> CircuitProblem:
        return self.decks[self.deck_keys[k]]

    def affinity(self, x: np.ndarray) -> str | None:
        """The deck a simulation needs (its PDK process): a worker that has it loaded skips a PDK reload."""
        k = int(x[-1])
        own = self.deck(k).affinity         # a deck loaded afresh for every sizing: each its own load
        return self.deck_keys[k] if own is None else own(x[:-1])

    def prepare(self, x: np.ndarray) -> None:
        self.deck(int(x[-1])).prepare(x[:-1])

    def to_physical(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=float)
        return np.concatenate([super().to_physical(u[..., :-1]), u[..., -1:]], axis=-1)

    def as_dict(self, x: np.ndarray) -> dict[str, float]:
        return {**super().as_dict(x[:-1]), "corner": int(x[-1])}

    def simulate(self, x: np.ndarray) -> Outcome:
        k = int(x[-1])
        deck = self.deck(k)
        outcome = deck.simulate(x[:-1], self.overrides[k])
        self.needs_new_process = deck.needs_new_process
        if outcome.error:         # the run's "last error" and the history then say which corner lost a measure
            outcome = replace(outcome, error=f"corner {self.corners[k].name}: {outcome.error}")
        return outcome

    @property
    def needed(self) -> tuple[str, ...]:
        return self._needed

    def deck_error(self, error: str) -> str:
        """``error`` as the deck gave it, without the corner :meth:`simulate` names: a deck that fails alike at every
        corner fails with one error (:class:`zoaf.evaluate.FailureWatch`)."""
        for c in self.corners:
            if error.startswith(said := f"corner {c.name}: "):
                return error[len(said):]
        return error

    def close(self) -> None:
        for deck in self.decks.values():
            deck.close()


class CornerProblem(Problem):
    """A circuit judged at its worst over corners; everything else (spec, netlist, output) is ``base``'s."""

    def __init__(self, base: CircuitProblem, corners: Sequence[Corner], *, prune: bool = True) -> None:
        if base.objective is None:
            raise InputError("corners judge a spec objective; a Python fom= has no corners")
        super().__init__(base.parameters)
        self.base = base
        self.name = base.name
        self.corners = tuple(corners)
        self.prune = prune
        self.sims = CornerSims(base, self.corners)
        obj = base.objective
        # The objective's measure is reported at its worst as the objective (its own direction, which the FoM
        # uses), every other constrained measure at the corner of its binding constraint (corners.worst_case).
        self.directions = {**{c.measure: c.op in ("<=", "<") for c in obj.constraints},
                           obj.measure: obj.sense == "minimize"}
        self.constrained = tuple(None if c.measure == obj.measure else c.measure for c in obj.constraints)

    @classmethod
    def wrap(cls, problem: Problem, *, prune: bool = True) -> Problem:
        """``problem`` judged over its objective's corners, or ``problem`` itself when it names none."""
        objective = getattr(problem, "objective", None)
        if not isinstance(problem, CircuitProblem) or objective is None or not objective.corners:
            return problem
        corners = problem.spec.corners.select(list(objective.corners), "objective corners")
        return cls(problem, corners, prune=prune)

    def __getattr__(self, name: str) -> Any:
        if name in ("base", "__setstate__", "__getstate__"):
            raise AttributeError(name)
        return getattr(self.base, name)

    # Problem's own defaults must not hide the circuit's (``__getattr__`` only sees what Problem lacks).
    def x0_unit(self) -> np.ndarray | None:
        return self.base.x0_unit()

    @property
    def constraint_names(self) -> tuple[str, ...]:
        return self.base.constraint_names

    def target_fom(self) -> float | None:
        return self.base.target_fom()

    @property
    def needed(self) -> tuple[str, ...]:
        return self.base.needed

    def artifacts(self, params: Mapping[str, float]) -> dict[str, str | bytes]:
        return self.base.artifacts(params)

    def judge(self, outcomes: Sequence[Outcome]) -> WorstCase:
        obj = self.base.objective
        return worst_case(outcomes, minimize=obj.sense == "minimize", scale=obj.scale, directions=self.directions,
                          constrained=self.constrained)

    def simulate(self, x: np.ndarray) -> Outcome:
        """All corners, one after another, judged at the worst (``CornerEvaluator`` runs them in parallel)."""
        return self.judge([self.sims.simulate(np.append(x, k)) for k in range(len(self.corners))]).outcome

    def method_budget(self, budget: int) -> int:
        return max(1, budget // len(self.corners))

    def evaluator(self, **options: Any) -> "CornerEvaluator":
        return CornerEvaluator(self, **options)

    def metadata(self) -> dict[str, Any]:
        """The circuit's identity, the corners, and what each corner sets (``corner_values``: its ``.param`` values,
        a process section's from ``process_lib`` too, which no hash covers: a run resumed after an edit there
        mixed rows of two process models)."""
        values = {c.name: dict(sorted(v.items())) for c, v in zip(self.corners, self.sims.overrides)}
        return {**self.base.metadata(), "corners": [c.as_json() for c in self.corners], "prune": self.prune,
                "corner_values": values}             # RunMeta.ADDED: older runs, recorded without it, resume

    def close(self) -> None:
        self.sims.close()
        self.base.close()


@dataclass(frozen=True, eq=False)
class SizingRecord(Record):
    """One sizing of a corner run: its worst case (``outcome``) and the corner simulations behind it.

    ``charged`` is the method's budget credit: after S simulations the method has been charged ceil(S / n)
    sizings of n corners, so the simulations pruning saves buy further sizings and a batch of the sizings the
    method may still ask costs at most the simulations left; ``cost`` is the simulations themselves.

    ``cut``: Ctrl-C stopped the sizing's batch before it had every corner it would have had (``pruned``: its
    other corners skipped, its worst case already beyond the incumbent's). Its corners so far are kept, not
    dropped: they are spent simulations in the history, which the run's result counts and a resume replays. But
    its ``outcome`` is only a lower bound of its worst case, which may lie below the best sizing's (a pruned
    sizing's never does): ranked by it, the run would report as its best a sizing not judged at every corner,
    so its ``fom`` is +inf, no verdict (``outcome.fom`` still the bound, no failure)."""

    corner_records: tuple[Record, ...] = ()
    sims: int = 0
    credit: bool = True
    pruned: bool = False
    worst: int = 0                       # the index of the corner that set the worst case
    cut: bool = False

    @property
    def fom(self) -> float:
        return math.inf if self.cut else self.outcome.fom

    @property
    def charged(self) -> bool:
        return self.credit

    @property
    def cost(self) -> int:
        return self.sims


@dataclass
class _Batch:
    """The batch a ``CornerEvaluator`` is answering: its sizings, their corner records so far, the corner a pruning
    batch simulates first (None: every corner at once), and the inner batch being simulated (its (sizing, corner)
    pairs, the first numbered ``base``)."""

    u: np.ndarray
    phase: str
    done: list[dict[int, Record]]
    first: int | None
    todo: list[tuple[int, int]] = field(default_factory=list)
    base: int = 0


class CornerEvaluator(BatchEvaluator):
    """Evaluate sizings over corners with an inner ``Evaluator`` of ``CornerSims`` (workers, Dask, cache,
    history, replay: all the inner one's)."""

    def __init__(self, problem: CornerProblem, **options: Any) -> None:
        self.problem = problem
        self.inner = Evaluator(problem.sims, **options)
        # A PDK process switch reloads the library in a worker (seconds): a batch is sent grouped by deck, so a
        # worker loads each process once per batch rather than once per sizing (see _deck_order).
        keys = problem.sims.deck_keys
        first = {key: j for j, key in enumerate(dict.fromkeys(keys))}
        self._deck_rank = [first[key] for key in keys]
        self._reset()

    def _reset(self) -> None:
        self._next = 0
        self.simulations = 0
        self.saved = 0                      # corner simulations pruning skipped
        self.incumbent: SizingRecord | None = None
        self._batch: _Batch | None = None   # the batch being answered (cut_batch), None once answered
        self._watches = [FailureWatch.of_deck(self.problem.sims) for _ in self.problem.corners]   # one a corner

    def start(self) -> "CornerEvaluator":
        self.inner.start()
        return self

    def close(self) -> None:
        self.inner.close()

    @property
    def stats(self) -> dict[str, int]:
        return self.inner.stats

    def record_to(self, history: History) -> None:
        self.inner.record_to(history)
        self._reset()

    def evaluate(self, u: np.ndarray, phase: str = "") -> list[SizingRecord]:
        u = np.atleast_2d(np.asarray(u, dtype=float))
        n = len(self.problem.corners)
        first = 0 if self.incumbent is None else self.incumbent.worst
        order = [first] + [k for k in range(n) if k != first]
        pruning = self.problem.prune and self.incumbent is not None
        batch = self._batch = _Batch(u, phase, [{} for _ in u], first if pruning else None)
        for stage in [order[:1], order[1:]] if pruning else [order]:
            todo = [(i, k) for i in range(len(u)) if not self._beaten(batch.done[i]) for k in stage]
            todo.sort(key=lambda ik: self._deck_order(ik[1], first))
            batch.todo, batch.base = todo, self.inner.asked
            if todo:
                recs = self.inner.evaluate(np.array([np.append(u[i], k) for i, k in todo]), phase)
                for (i, k), r in zip(todo, recs):
                    batch.done[i][k] = r
            batch.todo = []
        self._batch = None
        self._check_corners(batch.done)
        return [self._sizing(u[i], batch.done[i], phase) for i in range(len(u))]

    def _check_corners(self, done: Sequence[Mapping[int, Record]]) -> None:
        """:class:`~zoaf.errors.DeckFailure` once one corner fails alike across the box while the others measure (the
        inner evaluator stops a deck that fails alike at all of them): no sizing has a worst case over the corners,
        so the run would spend its budget on sizings that can never be judged. Raised after the batch is recorded,
        so that a resume stops at the same batch; it names the corner (each that is so) and its error."""
        for partial in done:
            for k, rec in partial.items():
                self._watches[k].add(rec)
        broken = [k for k, w in enumerate(self._watches) if w.broken()]
        if not broken:
            return
        w, names = self._watches[broken[0]], [self.problem.corners[k].name for k in broken]
        error = " ".join(str(w.error).split())
        how = (f"the deck does not load there ({error})" if w.unloadable else
               f"{len(w.sizings)} sizings across the box all failed there the same way ({error})")
        also = f" (corner{'s' * (len(names) > 2)} {', '.join(names[1:])} too)" if len(names) > 1 else ""
        raise DeckFailure(f"{self.problem.netlist.path}: the run stopped at corner {names[0]}{also}: {how}, none gave "
                          "what the objective needs there, so no sizing has a worst case over the corners: fix the "
                          f"deck or that corner and start a new run{self.inner.kept}", error, len(w.sizings))

    def cut_batch(self) -> list[SizingRecord]:
        """The sizings of a batch Ctrl-C cut that have a corner simulated (or replayed, or cached): each whole one
        as the uncut batch has it (every corner, or pruned: its first corner alone, beyond the incumbent), the
        others ``cut``. A sizing of which no corner completed has no record: nothing of it was recorded."""
        batch, self._batch = self._batch, None
        if batch is None:
            return []
        for r in self.inner.cut_batch():          # the inner batch's simulations that completed before the cut
            i, k = batch.todo[r.idx - batch.base]
            batch.done[i][k] = r
        n = len(self.problem.corners)
        cut = [len(d) < n and not (set(d) == {batch.first} and self._beaten(d)) for d in batch.done]
        return [self._sizing(batch.u[i], d, batch.phase, cut[i]) for i, d in enumerate(batch.done) if d]

    def _deck_order(self, k: int, first: int) -> tuple[bool, int]:
        """Sort key of corner ``k``'s simulations in a batch: grouped by deck (stable), the deck of the corner
        simulated first last, so the workers still hold it when the next batch starts there."""
        return (self._deck_rank[k] == self._deck_rank[first], self._deck_rank[k])

    def _beaten(self, partial: Mapping[int, Record]) -> bool:
        """Already worse than the incumbent on the corners simulated so far (so also on all of them)."""
        if not partial or self.incumbent is None:
            return False
        return self.problem.judge([r.outcome for r in partial.values()]).outcome.fom > self.incumbent.fom

    def _sizing(self, u: np.ndarray, partial: Mapping[int, Record], phase: str, cut: bool = False) -> SizingRecord:
        n = len(self.problem.corners)
        ks = sorted(partial)
        recs = tuple(partial[k] for k in ks)
        wc = self.problem.judge([r.outcome for r in recs])
        sims = sum(r.charged for r in recs)
        before, self.simulations = self.simulations, self.simulations + sims
        pruned = len(ks) < n and not cut
        if pruned:
            self.saved += n - len(ks)
        credit = -(-self.simulations // n) > -(-before // n)    # ceil: a batch never overruns the budget
        rec = SizingRecord(self._next, u.copy(), self.problem.base.as_dict(self.problem.to_physical(u)),
                           wc.outcome, phase, max(r.wall for r in recs), recs, sims, credit, pruned, ks[wc.worst], cut)
        self._next += 1
        if not rec.pruned and np.isfinite(rec.fom) and (self.incumbent is None or rec.fom < self.incumbent.fom):
            self.incumbent = rec
        return rec


def corner_overrides(base: CircuitProblem, c: Corner, pdk: bool, with_temp: bool, where: str) -> dict[str, float]:
    """The ``.param`` values corner ``c`` sets (process cards unless a PDK section does it, its overrides, the
    temperature); a design variable or an unknown name is refused in one line naming ``where``."""
    values: dict[str, float] = {}
    if c.process is not None and not pdk:
        lib = base.spec.corners.process_lib if base.spec.corners else None
        if lib is None:
            raise InputError(f"{where}: process {c.process!r} needs process_lib in [corners] (no pdk)")
        values.update(process_params(lib, c.process, where))
    values.update(dict(c.params))
    design = set(base.names)
    for name in values:
        if name in design:
            raise InputError(f"{where}: {name!r} is a design variable; a corner may override fixed .params only")
        if name not in base.netlist.params:
            raise InputError(f"{where}: {name!r} is not a .param of {base.netlist.path}")
    if with_temp:
        values[TEMP_PARAM] = NOMINAL_TEMP if c.temp is None else c.temp
    return values
