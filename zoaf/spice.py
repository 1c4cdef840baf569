"""Simulate a netlist with ngspice: in-process (:class:`SpiceSession`) or as a subprocess (:func:`run_batch`).

:class:`SpiceSession` drives libngspice (through PySpice's ``NgSpiceShared``) in this process: the netlist is
loaded once and every :meth:`~SpiceSession.evaluate` re-simulates it with new ``.param`` values
(``alterparam`` + ``reset``), ~10-20x faster than a fresh ``ngspice -b`` for small circuits and ~500x for PDK
decks (see /work/shared/NGSPICE.md). There is one libngspice per process: sessions share it, a new session
removes the previous one's circuit. The library is not thread-safe: use a session from one thread, and one
worker process per concurrent simulation.

Per evaluation (the ngspice commands sent):
    1. ``alterparam name=value`` for each changed ``.param`` (repr-exact values), then ``reset``;
    2. each analysis in netlist order (``bg_<analysis>`` under a wall-clock limit, halted with ``bg_halt``),
       then the netlist's ``.meas`` statements of that analysis type as ``meas`` commands (a ``.meas ac`` or
       ``.meas sp`` after ``.sp`` runs as ``meas ac`` on the sp plot: ``meas sp`` crashes ngspice 39);
       a ``.control`` block is replayed after the analyses, or instead of them when it runs analyses itself
       (``run`` then stands for the netlist's analyses), as ``ngspice -b`` does;
    3. every result is copied out of ngspice (``ngGet_Vec_Info``), then ``destroy all``.
ngspice's output is captured per command and classified (:func:`classify`) into zoaf's typed errors.

:func:`run_batch` runs ``ngspice -b`` on a netlist in a subprocess and parses its printed results: the
reference the session is tested and benchmarked against.

Example:
    >>> from zoaf.netlist import Netlist
    >>> with SpiceSession(Netlist.read("tests/netlists/rc.cir")) as s:   # doctest: +SKIP
    ...     s.evaluate({"r1": 2e3})
    {'f3db': 79577.47...}
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from .errors import ConvergenceError, InputError, MeasureError, ParseError, SimulationError, Timeout
from .netlist import ANALYSES, Measure, Netlist

__all__ = ["DEFAULT_TIMEOUT", "SpiceSession", "classify", "run_batch", "shared_ngspice"]

#: Default wall-clock limit of one evaluation, seconds.
DEFAULT_TIMEOUT = 60.0
#: Output lines that mean the simulation failed, by error type (matched lower-case, in this order).
_PARSE_PATTERNS = ("cannot recover", "could not find a valid modelname", "not parsed", "unknown model",
                   "no circuit loaded", "aren't any circuits loaded", "there is no circuit", ".end statement",
                   "could not find include file", "unknown subckt", "undefined", "syntax error",
                   "unknown parameter", "unrecognized")
_CONVERGENCE_PATTERNS = ("transient op started", "too small", "aborted", "operating point failed",
                         "cannot recover", "singular matrix", "iteration limit", "simulation interrupted",
                         "no convergence", "analysis not run", "no data saved")
_MEASURE_PATTERNS = ("out of interval", "meas ", "measure")
#: Lines that contain a trigger word but are harmless.
_BENIGN = ("warning:", "note: starting", "note: gmin", "note: source", "background thread stopped",
           "circuit:", "reset re-loads circuit", "trying gmin")   # ngspice recovers after a failed gmin step   # the last two echo the netlist's title, which may say "error"
#: Plot-name prefixes each analysis creates (``noise`` makes two plots; ``noise`` prefix covers both).
_PLOT_PREFIX = {"op": "op", "ac": "ac", "dc": "dc", "tran": "tran", "noise": "noise", "sp": "sp", "pz": "pz",
                "tf": "tf", "sens": "sens", "disto": "disto", "pss": "pss", "hb": "hb"}
#: Which ``.meas`` types run on a plot of each type (``meas sp`` segfaults: run as ``meas ac`` on sp plots).
_MEAS_ON_PLOT = {"ac": ("ac", "sp"), "sp": ("ac", "sp"), "dc": ("dc",), "tran": ("tran",)}
#: What a hand or batch run needs to match the session (``.spiceinit`` beside the netlist): PDK decks such as
#: sky130 need ``ngbehavior=hsa``; one OpenMP thread is what the session uses.
SPICEINIT = "set ngbehavior=hsa\nset num_threads=1\n"
#: Clear ngspice's command history every this many evaluations (it grows ~6 kB per 100 evaluations).
_HISTORY_EVERY = 100
_log = logging.getLogger(__name__)


def classify(lines: Iterable[str], *, context: str, default: type[SimulationError] | None = None
             ) -> SimulationError | None:
    """The error ngspice's output ``lines`` of one command report, or None when they report none.

    Args:
        lines: ngspice's output of one command (``stdout``/``stderr`` prefixes already removed).
        context: what was run, for the message (``"reset"``, ``"ac dec 10 1 1g"``).
        default: the error type for an unclassified ``error``/``failed`` line (None: SimulationError).
    """
    lines = [ln for ln in lines if ln.strip()]
    low = [ln.lower() for ln in lines]
    bad = [i for i, s in enumerate(low)
           if (not s.lstrip().startswith(_BENIGN) and "<<nan, error" not in s) or "transient op started" in s]
    hits = [i for i in bad if any(w in low[i] for w in ("error", "fail", "abort", "not parsed", "cannot",
                                                        "too small", "transient op started",
                                                        "could not find", "out of interval", "undefined",
                                                        "interrupted", "singular"))]
    if not hits:
        return None
    text = "\n".join(lines)
    first = lines[hits[0]].strip()
    for i in hits:
        if any(p in low[i] for p in _PARSE_PATTERNS):
            err = ParseError(f"{context}: {lines[i].strip()}", text)
            if any("cannot recover" in s or "fatal error" in s for s in low):
                err.needs_new_process = True
            return err
    for i in hits:
        if any(p in low[i] for p in _CONVERGENCE_PATTERNS):
            return ConvergenceError(f"{context}: {lines[i].strip()}", text)
    for i in hits:
        if any(p in low[i] for p in _MEASURE_PATTERNS):
            return MeasureError(f"{context}: {lines[i].strip()}", text)
    return (default or SimulationError)(f"{context}: {first}", text)


# ---------------------------------------------------------------------- the process's libngspice
_SHARED = None
_SHARED_LOCK = threading.Lock()


def shared_ngspice():
    """The process's one libngspice instance (created on first use). Raises ImportError/OSError without it."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            logging.getLogger("PySpice").setLevel(logging.CRITICAL)   # "Unsupported Ngspice version 39"
            from PySpice.Spice.NgSpice.Shared import NgSpiceShared, ffi

            class _Ng(NgSpiceShared):
                """Captures output lines itself (PySpice's lists grow forever) and signals bg-thread ends."""

                def __init__(self) -> None:
                    self.lines: list[str] = []
                    self.bg_done = threading.Event()
                    super().__init__(ngspice_id=0, send_data=False)

                @staticmethod
                def _send_char(message_c, ngspice_id, user_data):   # type: ignore[override]
                    self = ffi.from_handle(user_data)
                    self.lines.append(ffi.string(message_c).decode("utf-8", "replace"))
                    return 0

                @staticmethod
                def _send_stat(message, ngspice_id, user_data):     # type: ignore[override]
                    return 0

                @staticmethod
                def _background_thread_running(no_bg, ngspice_id, user_data):  # type: ignore[override]
                    # ngspice calls this with False when its thread starts and True when it ends.
                    if no_bg:
                        ffi.from_handle(user_data).bg_done.set()
                    return 0

                def _get_version(self) -> None:   # PySpice's uses exec_command; we need nothing from it
                    self._ngspice_version = 39
                    self._has_xspice = self._has_cider = True
                    self._extensions = []

            ng = _Ng()
            ng.ffi = ffi
            _SHARED = ng
            _command(ng, "set num_threads=1")
            # ngspice 39 ignores `.options optran` in a deck and falls back to a transient operating point that
            # may "converge" to a wrong bias. `optran 1 1 1 0 0 0` keeps Newton/gmin/source stepping and turns
            # the fallback off (`optran 0 0 0 0 0 0` also turns the stepping off: every op fails). It survives
            # `reset`; "Transient op started" is still classified as a failure, should it appear.
            _command(ng, "optran 1 1 1 0 0 0")
            _command(ng, "set nomoremode")
            _command(ng, f"set history={_HISTORY_EVERY}")
            ng.baseline_vars = _variables(ng)
        return _SHARED


def _command(ng, command: str) -> list[str]:
    """Send one command; return its output lines without ``stdout``/``stderr`` prefixes."""
    ng.lines = []
    ng._ngspice_shared.ngSpice_Command(command.encode())
    return _strip_prefix(ng.lines)


def _variables(ng) -> set[str]:
    """Names of ngspice's front-end variables (``set`` with no argument lists them, ``* name`` for read-only)."""
    return {ln.lstrip("* ").split("\t")[0].split()[0] for ln in _command(ng, "set") if ln.strip()}


def _forget_previous_deck(ng) -> None:
    """Unset the variables an earlier deck's ``.options``/``.control`` left behind (sky130's ``scale=1e-6``
    would shrink every device of the next circuit loaded in this process a millionfold)."""
    for name in sorted(_variables(ng) - ng.baseline_vars):
        _command(ng, f"unset {name}")


def _strip_prefix(lines: list[str]) -> list[str]:
    out = []
    for ln in lines:
        head, _, rest = ln.partition(" ")
        out.append(rest if head in ("stdout", "stderr") else ln)
    return out


# ---------------------------------------------------------------------- the session
class SpiceSession:
    """A netlist loaded into this process's libngspice, re-simulated per :meth:`evaluate`.

    Args:
        netlist: a :class:`~zoaf.netlist.Netlist` or a path to one.
        timeout: wall-clock limit of one evaluation in seconds (None: none; analyses then run synchronously).
    Raises:
        ParseError: the netlist does not load (``needs_new_process`` after a numparam error).
    """

    _active: "SpiceSession | None" = None

    def __init__(self, netlist: Netlist | str | os.PathLike[str], *,
                 timeout: float | None = DEFAULT_TIMEOUT) -> None:
        self.netlist = netlist if isinstance(netlist, Netlist) else Netlist.read(netlist)
        self.timeout = timeout
        self.evaluations = 0
        self._ng = None
        self._loaded = False
        self._current: dict[str, str] = {}      # param -> value text now in ngspice's deck
        self._broken: ParseError | None = None

    # -- lifecycle
    def __enter__(self) -> "SpiceSession":
        self.load()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load(self) -> None:
        """Load the session deck (done by ``with`` and by the first :meth:`evaluate`)."""
        if self._broken is not None:
            raise self._broken
        ng = self._ng = shared_ngspice()
        prev = SpiceSession._active
        if prev is not None and prev._loaded:
            prev.close()
        _forget_previous_deck(ng)
        _command(ng, "set ngbehavior=hsa")
        deck = self.netlist.session_deck()
        ffi = ng.ffi
        keep = [ffi.new("char[]", line.encode()) for line in deck]
        arr = ffi.new("char*[]", keep + [ffi.NULL])
        ng.lines = []
        rc = ng._ngspice_shared.ngSpice_Circ(arr)
        out = _strip_prefix(ng.lines)
        err = classify(out, context=f"loading {self.netlist.path}", default=ParseError)
        if rc != 0 or err is not None or not any(s.startswith("Circuit:") for s in out):
            if not isinstance(err, ParseError):
                err = ParseError(f"loading {self.netlist.path}: ngspice did not load the circuit",
                                 "\n".join(out))
            if rc != 0 or "cannot recover" in err.output.lower():
                err.needs_new_process = True
                self._broken = err
            raise err
        self._loaded = True
        self._current = dict(self.netlist.params)
        SpiceSession._active = self

    def close(self) -> None:
        """Remove this session's circuit from libngspice (the library itself stays for the next session)."""
        if self._loaded and self._ng is not None:
            _command(self._ng, "destroy all")
            _command(self._ng, "remcirc")
        self._loaded = False
        if SpiceSession._active is self:
            SpiceSession._active = None

    # -- commands
    def _cmd(self, command: str) -> list[str]:
        return _command(self._ng, command)

    def _vec(self, name: str) -> np.ndarray | None:
        ffi, lib = self._ng.ffi, self._ng._ngspice_shared
        vi = lib.ngGet_Vec_Info(name.encode())
        if vi == ffi.NULL:
            return None
        n = vi.v_length
        if vi.v_compdata != ffi.NULL:
            return np.frombuffer(ffi.buffer(vi.v_compdata, 16 * n), np.complex128).copy()
        if vi.v_realdata == ffi.NULL:
            return None
        return np.frombuffer(ffi.buffer(vi.v_realdata, 8 * n), np.float64).copy()

    def _plot(self) -> str:
        return self._ng.ffi.string(self._ng._ngspice_shared.ngSpice_CurPlot()).decode()

    def _run_analysis(self, command: str, deadline: float | None) -> list[str]:
        """Run one analysis command, in ngspice's background thread when there is a deadline."""
        if deadline is None:
            return self._cmd(command)
        ng = self._ng
        lib = ng._ngspice_shared
        ng.bg_done.clear()
        ng.lines = []
        lib.ngSpice_Command(("bg_" + command).encode())
        if not ng.bg_done.wait(max(0.0, deadline - time.monotonic())):
            lib.ngSpice_Command(b"bg_halt")
            ng.bg_done.wait(10.0)
            out = _strip_prefix(ng.lines)
            self._settle()
            raise Timeout(f"{command}: still running after the {self.timeout:g} s limit (halted)",
                          "\n".join(out))
        self._settle()
        return _strip_prefix(ng.lines)

    def _settle(self) -> None:
        lib = self._ng._ngspice_shared
        for _ in range(10000):          # the thread calls back just before it exits
            if not lib.ngSpice_running():
                return
            time.sleep(1e-4)

    # -- evaluation
    def evaluate(self, params: Mapping[str, float] | None = None, names: Iterable[str] | None = None
                 ) -> dict[str, float]:
        """Simulate with these ``.param`` values (others at their defaults) and return the results.

        Args:
            params: top-level ``.param`` name (any case) -> value in SPICE units.
            names: the results wanted (default: every ``.meas`` name and every scalar ``.control`` result).
        Returns:
            result name -> float.
        Raises:
            InputError: a name that is not a ``.param`` of the netlist, or an unknown result name.
            ParseError, ConvergenceError, MeasureError, Timeout: the simulation failed; ngspice's output is
                on the exception's ``output``. The session stays usable unless ``needs_new_process``.
        """
        nl = self.netlist
        new = nl.check_params(params or {})
        wanted = None if names is None else [n.lower() for n in names]
        if wanted is not None:
            unknown = [n for n in wanted if n not in nl.results]
            if unknown:
                raise InputError(f"{nl.path}: no result named {', '.join(unknown)} "
                                 f"(known: {', '.join(nl.results)})")
        if not self._loaded:
            self.load()
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        self.evaluations += 1
        try:
            return self._evaluate(new, wanted, deadline)
        except ParseError as e:
            # A circuit that failed to re-parse is gone from ngspice: reload it before the next evaluation.
            self._loaded = False
            if e.needs_new_process:
                self._broken = e
            raise
        finally:
            if self._loaded:
                self._cmd("destroy all")
            if self.evaluations % _HISTORY_EVERY == 0:
                self._cmd("unset history")
                self._cmd(f"set history={_HISTORY_EVERY}")

    def _evaluate(self, new: dict[str, str], wanted: list[str] | None, deadline: float | None
                  ) -> dict[str, float]:
        nl = self.netlist
        target = {**nl.params, **new}
        for name, value in target.items():
            if self._current.get(name) != value:
                out = self._cmd(f"alterparam {name}={value}")
                err = classify(out, context=f"alterparam {name}={value}", default=ParseError)
                if err is not None:
                    raise err
                self._current[name] = value
        out = self._cmd("reset")
        err = classify(out, context="reset", default=ParseError)
        if err is not None:
            if not isinstance(err, ParseError):
                err = ParseError(str(err), err.output)
            if "cannot recover" in err.output.lower():
                err.needs_new_process = True
            raise err
        results: dict[str, float] = {}
        where: dict[str, str] = {}            # control result name -> plot it was made in
        self._missing: list[tuple[str, str]] = []   # (message, ngspice output) of measures that gave nothing
        if nl.control_runs_analyses:
            self._replay_control(results, where, deadline)
        else:
            for a in nl.analyses:
                self._analysis(a, results, deadline)
            self._replay_control(results, where, deadline)
        return self._collect(results, where, wanted)

    def _analysis(self, command: str, results: dict[str, float], deadline: float | None) -> None:
        kind = command.split(None, 1)[0]
        before = self._plot()
        out = self._run_analysis(command, deadline)
        err = classify(out, context=command, default=ConvergenceError)
        if err is not None:
            raise err
        plot = self._plot()
        prefix = _PLOT_PREFIX.get(kind, kind)
        if not plot.startswith(prefix) or (plot == before and kind != "op"):
            raise ConvergenceError(f"{command}: produced no {kind} plot (current plot {plot!r})",
                                   "\n".join(out))
        for m in self.netlist.measures:
            if prefix not in _MEAS_ON_PLOT[m.analysis]:
                continue
            mout = self._cmd(self._meas_command(m))
            value = self._vec(m.name)
            if value is None or value.size == 0:
                # Keep going: the other measures of a valid design are still worth having (MeasureError.measures).
                reason = next((s.strip() for s in mout if s.strip() and not s.strip().lower().startswith(_BENIGN)),
                              "no result")   # ngspice's own words, not a background-thread note
                self._missing.append((f".meas {m.name} (line {m.line}) produced no value: {reason}",
                                      "\n".join(mout)))
                continue
            results[m.name] = float(np.real(value[0]))

    @staticmethod
    def _meas_command(m: Measure) -> str:
        """The command that computes ``.meas`` ``m`` on the current plot.

        ``meas sp`` segfaults ngspice 39: it runs as ``meas ac`` (the sp plot has the same layout).
        ``param='expr'`` measures do not work as commands: they become ``let name = expr`` (the other measures
        they use are vectors of the current plot; ``.param`` values are not visible there).
        """
        pm = re.match(r"^meas\s+\w+\s+(\S+)\s+param\s*=\s*(.+)$", m.text)
        if pm:
            expr = pm.group(2).strip()
            if len(expr) > 1 and expr[0] == expr[-1] and expr[0] in "'\"":
                expr = expr[1:-1]
            elif expr.startswith("{") and expr.endswith("}"):
                expr = expr[1:-1]
            return f"let {pm.group(1)} = {expr}"
        if m.analysis == "sp":
            return "meas ac " + m.text.split(None, 2)[2]
        return m.text

    def _replay_control(self, results: dict[str, float], where: dict[str, str], deadline: float | None
                        ) -> None:
        depth = 0
        pending: list[str] = []
        for c in self.netlist.control:
            word = c.split(None, 1)[0]
            if word == "run" and depth == 0:
                for a in self.netlist.analyses:
                    self._analysis(a, results, deadline)
                continue
            if word in ANALYSES and depth == 0:
                self._analysis(c, results, deadline)
                continue
            out = self._cmd(c)
            err = classify(out, context=c, default=SimulationError)
            if err is not None:
                raise err
            if word in ("if", "while", "repeat", "dowhile", "foreach"):
                depth += 1
            elif word == "end":
                depth -= 1
            m = re.match(r"^(?:let\s+([a-z_][\w.]*)\s*=|meas(?:ure)?\s+[a-z]+\s+([a-z_][\w.]*))", c)
            if m:
                pending.append(m.group(1) or m.group(2))
            if depth == 0 and pending:
                plot = self._plot()
                for name in pending:
                    where[name] = plot
                pending = []
            if self.timeout is not None and deadline is not None and time.monotonic() > deadline:
                raise Timeout(f"{c}: evaluation ran past the {self.timeout:g} s limit")

    def _collect(self, results: dict[str, float], where: dict[str, str], wanted: list[str] | None
                 ) -> dict[str, float]:
        for name, plot in where.items():
            if wanted is not None and name not in wanted:
                continue
            v = self._vec(f"{plot}.{name}")
            if v is None or v.size != 1:
                if wanted is None:
                    continue                  # a temporary vector of the .control block, not a result
                what = "no such vector" if v is None else f"a vector of {v.size} values, not a scalar"
                raise MeasureError(f".control result {name}: {what}")
            if np.iscomplexobj(v) and v[0].imag != 0:
                raise MeasureError(f".control result {name} is complex: take db(), mag() or ph() in the let")
            results[name] = float(np.real(v[0]))
        if self._missing:
            message, output = self._missing[0]
            more = f" (and {len(self._missing) - 1} more)" if len(self._missing) > 1 else ""
            raise MeasureError(message + more, output, results)
        if wanted is None:
            return results
        missing = [n for n in wanted if n not in results]
        if missing:
            raise MeasureError(f"no value for {', '.join(missing)}", measures=results)
        return {n: results[n] for n in wanted}


# ---------------------------------------------------------------------- ngspice -b reference
_RESULT_LINE = re.compile(r"^\s*([a-z_][\w.#()\[\]:]*)\s*=\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)"
                          r"(?=\s|,|$)", re.I)


def run_batch(netlist: str | os.PathLike[str], timeout: float = DEFAULT_TIMEOUT, *,
              ngspice: str = "ngspice") -> dict[str, float]:
    """Run ``ngspice -b`` in a subprocess and return the printed results (``name = value`` lines).

    Args:
        netlist: a netlist path, or netlist text (anything containing a newline); text runs from a temporary
            file, so its include paths must be absolute (as :meth:`Netlist.with_params` writes them).
        timeout: wall-clock limit in seconds.
    Returns:
        name (lower-case) -> value, for every ``.meas`` result and every printed ``.control`` result
        (``let x = ...`` + ``print x``; ``set numdgt=15`` in the block prints them with full precision).
    Raises:
        the same typed errors as :class:`SpiceSession` (a ``.meas`` with no printed value: MeasureError).
    """
    exe = shutil.which(ngspice)
    if exe is None:
        raise InputError(f"{ngspice}: not found on PATH")
    with tempfile.TemporaryDirectory(prefix="zoaf-batch-") as tmp:
        if isinstance(netlist, str) and "\n" in netlist:
            path = Path(tmp) / "deck.cir"
            path.write_text(netlist)
        else:
            path = Path(netlist).absolute()
        nl = Netlist.from_text(path.read_bytes(), path, allow_shell=True)
        # ngspice -b reads .spiceinit from its working directory: the same settings as the session's.
        (Path(tmp) / ".spiceinit").write_text(SPICEINIT)
        try:
            proc = subprocess.run([exe, "-b", str(path)], cwd=tmp, capture_output=True, text=True,
                                  errors="replace", timeout=timeout)
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or "") if isinstance(e.stdout, str) else ""
            raise Timeout(f"ngspice -b {path}: still running after {timeout:g} s (killed)", out) from None
    output = proc.stdout + "\n" + proc.stderr
    lines = output.splitlines()
    if proc.returncode < 0:
        raise SimulationError(f"ngspice -b {path}: killed by signal {-proc.returncode}", output)
    results: dict[str, float] = {}
    wanted = set(nl.results)
    for ln in lines:
        m = _RESULT_LINE.match(ln)
        if m and m.group(1).lower() in wanted:
            results[m.group(1).lower()] = float(m.group(2))
    err = classify([ln for ln in lines if not _RESULT_LINE.match(ln)], context=f"ngspice -b {path}")
    if err is not None and not isinstance(err, MeasureError):
        raise err
    missing = [m.name for m in nl.measures if m.name not in results]
    if missing:
        raise MeasureError(f"ngspice -b {path}: no value for .meas {', '.join(missing)}", output)
    if err is not None:
        raise err
    return results
