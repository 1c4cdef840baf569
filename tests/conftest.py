"""One floating-point path for the whole suite, whatever the x86 machine.

Several tests pin every ask of a run bit for bit (a refactoring must not move a single one). numpy's wheels pick
their OpenBLAS kernel and their own SIMD loops by the CPU at import: an AVX-512 machine and an AVX2-only one
round the same dot products differently in the last bit (measured: each OpenBLAS kernel gave another run here; one pin
moved whatever the kernel), and a run's path drifts from there.
Before numpy is imported anywhere (this file is read before any test module, and in each xdist worker, whose
subprocesses inherit the environment), both are fixed to what every AVX2 machine has: OpenBLAS's Haswell kernels,
numpy without its AVX-512 loops, one BLAS thread."""
import os
import sys
from pathlib import Path


def _has_avx2_fma() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx2" in flags and "fma" in flags


if "numpy" in sys.modules:     # too late to choose: the pinned tests would fail for a reason they do not name
    raise RuntimeError("numpy was imported before tests/conftest.py could fix its floating-point path")
if _has_avx2_fma():
    os.environ["OPENBLAS_CORETYPE"] = "Haswell"
    os.environ["NPY_DISABLE_CPU_FEATURES"] = "X86_V4 AVX512_ICL AVX512_SPR"
os.environ["OPENBLAS_NUM_THREADS"] = "1"
