"""Skip marks for tests that drive ngspice: in this process (libngspice through PySpice) and as ``ngspice -b``."""
from __future__ import annotations

import shutil

import pytest


def _have_libngspice() -> bool:
    try:
        from zoaf.spice import shared_ngspice
        shared_ngspice()
        return True
    except Exception:  # noqa: BLE001 - any failure to load the library means: skip
        return False


#: A test that runs ``ngspice`` (the executable, or zoaf's sessions, which need Debian's ngspice packages too).
needs_ngspice = pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice executable not available")
#: ``pytestmark = NEEDS_NGSPICE`` in a module whose tests need libngspice in this process and ``ngspice -b``.
NEEDS_NGSPICE = [pytest.mark.skipif(not _have_libngspice(), reason="libngspice (PySpice) not available"),
                 needs_ngspice]
