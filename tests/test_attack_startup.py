"""Attacks on what a sandboxed process takes in as ngspice starts, before "no new code" seals it (the
``.spiceinit`` ngspice reads), and on what a deck's settings make ngspice start (OpenMP threads).

Each attack is proved real first (ngspice without the sandbox, or with the old behaviour spelled out), then run
through :func:`zoaf.sandbox.enter` with the simulator's start, the path every backend takes
(:func:`zoaf.isolation.open_session`).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from attackkit import hijacker
from fresh import in_fresh_process

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")

#: A preloaded library that makes the passwd database give this user the home named by ``RT_PASSWD_HOME`` (read
#: as it loads: the sandbox removes the variable before ngspice starts), as if a received deck had been saved there.
_PASSWD_HOME_C = r'''#define _GNU_SOURCE
#include <dlfcn.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
static char home[4096];
__attribute__((constructor)) static void keep(void) {
  const char *h = getenv("RT_PASSWD_HOME"); if (h) strncpy(home, h, sizeof home - 1);
}
struct passwd *getpwuid(uid_t uid) {
  struct passwd *(*real)(uid_t) = (struct passwd *(*)(uid_t))dlsym(RTLD_NEXT, "getpwuid");
  struct passwd *pw = real(uid);
  if (pw && home[0]) pw->pw_dir = home;
  return pw;
}
'''

#: Starts ngspice (argv[1]: "sandbox" through zoaf's lock-down for a deck in argv[2], else plainly) and says
#: whether a library's constructor ran: exit status 3.
_START = """
import sys, time
from pathlib import Path
import zoaf.watchdog as w
from zoaf import sandbox
from zoaf.spice import shared_ngspice
if sys.argv[1] == "sandbox":
    sandbox.designate()
    sandbox.enter(sandbox.Policy((Path(sys.argv[2]),)), start=shared_ngspice)
else:
    shared_ngspice()
time.sleep(0.5)
sys.exit(3 if w._held.__name__ == "hijacked" else 0)
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_a_spiceinit_in_the_passwd_home_loads_no_code_before_the_seal(tmp_path: Path):
    """ngspice 39 reads ``./.spiceinit``, else the one in the home of the passwd database (``getpwuid``), not
    ``$HOME``, which the sandbox had pointed at its private directory. A received deck saved with its
    ``.spiceinit`` in your home (the deck's folder, so Landlock grants it): its ``codemodel`` line loaded a library
    before "no new code" was set, whose constructor had the watchdog's thread write any file."""
    home, marker = tmp_path / "home", tmp_path / "outside" / "marker"
    home.mkdir()
    marker.parent.mkdir()
    (tmp_path / "pw.c").write_text(_PASSWD_HOME_C)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(tmp_path / "pw.so"), str(tmp_path / "pw.c"), "-ldl"],
                   check=True, timeout=60)
    (home / ".spiceinit").write_text(f"codemodel {hijacker(home, marker)}\n")
    env = {**os.environ, "LD_PRELOAD": str(tmp_path / "pw.so"), "RT_PASSWD_HOME": str(home)}
    plain = subprocess.run([sys.executable, "-c", _START, "plain"], env=env, cwd=tmp_path, timeout=120)
    assert plain.returncode == 3                        # real: ngspice reads the passwd home's .spiceinit
    locked = subprocess.run([sys.executable, "-c", _START, "sandbox", str(home)], env=env, cwd=tmp_path,
                            timeout=120)
    time.sleep(0.3)
    assert locked.returncode == 0 and not marker.exists()


#: A deck whose BSIM4 devices ngspice loads with OpenMP, with ``num_threads`` from the deck.
_THREADS_DECK = """threads
.model nch nmos level=54 version=4.8
m1 d g 0 0 nch w=1u l=0.1u
m2 d g 0 0 nch w=1u l=0.1u
vd d 0 1
vg g 0 1
.control
set num_threads={n}
op
.endc
.end
"""


def _threads_started(folder: str | None, n: int) -> tuple[int, list[str]]:
    """The threads a process (sandboxed for a deck in ``folder``, if one) gained by loading :data:`_THREADS_DECK`
    with ``num_threads`` = ``n``."""
    from zoaf import sandbox
    from zoaf.spice import shared_ngspice

    def threads() -> int:
        return int(re.search(r"Threads:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))

    if folder is not None:
        sandbox.designate()
        sandbox.enter(sandbox.Policy((Path(folder),)), start=shared_ngspice)
    before = threads()
    out = shared_ngspice().load(_THREADS_DECK.format(n=n).splitlines())[1]
    return threads() - before, out


def test_a_decks_num_threads_starts_no_more_threads_than_cpus(tmp_path: Path):
    """``set num_threads=N`` made ngspice's OpenMP start N - 1 threads in the worker, which no limit counted (their
    memory is small): a deck asking for 30,000 would take nearly every process ID of the machine (``pid_max``
    32768 here), and then no program of anyone's could start. Proved real at a small scale without the sandbox;
    in it: at most one thread per CPU."""
    cpus = os.cpu_count() or 1
    n = 4 * cpus + 8
    assert in_fresh_process(_threads_started, None, n)[0] == n - 1          # real, without the sandbox
    started, out = in_fresh_process(_threads_started, str(tmp_path), n)
    assert any("reference value" in ln.lower() for ln in out), out           # the analysis ran
    assert started <= cpus, started
