"""Red team, round 21: the Dask and pool paths, and what zoaf takes from the environment it starts in.

``--dask local`` started its cluster with Dask's default scratch folder, ``dask-scratch-space`` in the temporary
folder (``/tmp``, or ``TMPDIR``), which Dask reuses when it is there and writable, whoever made it, and which it
puts first on ``sys.path``: zoaf's own process's (the nanny and the scheduler run there) and each worker's. Another
user of the machine who made ``/tmp/dask-scratch-space`` first, writable by all, had a ``pyseccomp.py`` there
imported by each worker as it locked itself down: any code, run as you, before the sandbox.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")

from attackkit import DIVIDER_SPEC  # noqa: E402
from zoaf.circuit import CircuitProblem  # noqa: E402
from zoaf.evaluate import Evaluator  # noqa: E402
from zoaf.problem import Status  # noqa: E402

#: A module named as one a worker imports as it locks down: it leaves a marker, then hands over the real one.
_PLANTED = """import sys
open({marker!r}, "w").close()
sys.path.remove({folder!r})
del sys.modules[__name__]
import pyseccomp
"""


def test_a_shared_temporary_folder_plants_no_module_in_a_local_dask_cluster(tmp_path: Path, monkeypatch):
    """The temporary folder is one another user can write (``/tmp`` is): their ``dask-scratch-space`` there, made
    writable by all, holds a ``pyseccomp.py``. zoaf's cluster keeps its scratch files in a folder of its own, which
    it removes at the end, and puts nothing on zoaf's ``sys.path``."""
    shared = tmp_path / "shared"
    scratch = shared / "dask-scratch-space"
    scratch.mkdir(parents=True)
    scratch.chmod(0o777)
    marker = tmp_path / "planted-module-ran"
    (scratch / "pyseccomp.py").write_text(_PLANTED.format(marker=str(marker), folder=str(scratch)))
    (tmp_path / "deck").mkdir()
    deck = tmp_path / "deck" / "deck.cir"
    (tmp_path / "deck" / "deck.toml").write_text(DIVIDER_SPEC)
    deck.write_text("divider\n.param r1=1k\nv1 in 0 dc 1\nr1 in out {r1}\nr2 out 0 1k\n.control\nop\n"
                    "let vo = v(out)\nprint vo\n.endc\n.end\n")
    monkeypatch.setenv("TMPDIR", str(shared))
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    path = list(sys.path)
    with Evaluator(CircuitProblem(deck), workers=1, dask="local") as ev:
        [record] = ev.evaluate(np.array([[0.5]]))
        assert not marker.exists()
        assert not any(p.startswith(str(shared)) and "zoaf-dask-" not in p for p in sys.path), sys.path
    assert record.outcome.status is Status.OK, record.outcome
    assert sorted(p.name for p in shared.iterdir()) == ["dask-scratch-space"]        # its own folder removed
    assert sys.path == path


def test_the_working_directory_on_sys_path_stays_the_callers_after_the_lock_down(tmp_path):
    """A parent run as ``python -c`` (a REPL, a notebook) has ``''`` on ``sys.path``, which spawn copies into each
    worker and the ``workers=0`` child: after the lock-down's ``chdir`` it named the private directory, where a deck
    writes (``echo ... > json.py``), so a module imported later in an unconfined thread could be the deck's. Every
    entry is made absolute first: ``''`` still names the caller's folder, never the private one."""
    deck = tmp_path / "deck"
    deck.mkdir()
    probe = ("import json, os, sys\nfrom pathlib import Path\nfrom zoaf import sandbox\n"
             f"sandbox.enter(sandbox.Policy((Path({str(deck)!r}),)))\n"
             "print(json.dumps({'path': sys.path, 'cwd': os.getcwd()}), file=sys.stderr)\n")   # stdout: /dev/null
    r = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stderr.splitlines()[-1])
    assert got["cwd"] != str(tmp_path)                      # locked down: in its private directory
    assert all(os.path.isabs(p) for p in got["path"]), got["path"]
    assert str(tmp_path) in got["path"] and got["cwd"] not in got["path"]
