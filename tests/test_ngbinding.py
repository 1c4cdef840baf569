"""zoaf.ngbinding against the installed PySpice and libngspice: the hooks it overrides, the version it reads."""
from __future__ import annotations

import pytest

from zoaf import ngbinding

NgSpiceShared = pytest.importorskip("PySpice.Spice.NgSpice.Shared").NgSpiceShared


def test_pyspice_still_has_the_hooks_the_binding_overrides():
    import PySpice
    missing = ngbinding.missing_hooks(NgSpiceShared)
    assert not missing, (f"PySpice {PySpice.__version__} moved NgSpiceShared's private {', '.join(missing)}: "
                         "zoaf/ngbinding.py overrides them; adapt it to this PySpice or pin PySpice 1.5")


def test_missing_hooks_are_named():
    class Bare:
        _send_char = _send_stat = staticmethod(lambda *a: 0)
    assert ngbinding.missing_hooks(Bare) == ["_background_thread_running", "_get_version", "_init_ngspice"]


def test_reads_the_library_version_and_runs_commands():
    from zoaf.spice import shared_ngspice     # the process's one library, set up as sessions use it
    try:
        ng = shared_ngspice()
    except OSError as e:
        pytest.skip(f"libngspice not available: {e}")
    assert isinstance(ng.version, int) and ng.version >= 39, (
        f"libngspice reported version {ng.version!r}; zoaf is tested against ngspice 39 (docs/ngspice.md)")
    rc, out = ng.load(["zoaf binding test", "r1 1 0 1k", "v1 1 0 1", ".end"])
    assert rc == 0 and any(s.startswith("Circuit:") for s in out), out
    finished, out = ng.background("op", 10.0)
    assert finished, out
    assert ng.current_plot().startswith("op")
    assert float(ng.vector("v1#branch")[0]) == pytest.approx(-1e-3)
    assert ng.vector("no_such_vector") is None
    ng.command("destroy all")
    ng.command("remcirc")
