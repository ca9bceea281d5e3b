"""Running the contenders, each in its own process (TensorFlow and the TFLite runtimes do not share one well)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]  # the checkout: tools/<job>/<module>.py
ENV = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")


def run_json(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=ENV, cwd=REPO, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def cold_start(args: list[str]) -> dict[str, float]:
    """Process start to first explanation, and the child's peak RSS (from wait4's rusage)."""
    t = time.perf_counter()
    child = subprocess.Popen([sys.executable, *args], env=ENV, cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - t
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} exited {child.returncode}")
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024}


def run_tool(args: list[str]) -> None:
    subprocess.run([sys.executable, *args], check=True, cwd=REPO, capture_output=True,
                   env=ENV)


def machine_peak(threads: int) -> float:
    """The machine's float32 matrix-multiply rate with this many threads (OpenBLAS through NumPy), GFLOP/s: the
    ceiling a convolution (an im2col GEMM, as XNNPACK and oneDNN do it) can approach. The best of 15 products: a peak
    is what the machine reaches when nothing else gets in the way. OpenBLAS picks its kernels by CPU model and falls
    back to generic SSE3 ones (its "Prescott" core) for a model it does not know, as NumPy 1.26's OpenBLAS 0.3.23 does
    for an Emerald Rapids Xeon (family 6, model 207: 27 GFLOP/s where its AVX-512 kernels reach several times that),
    while XNNPACK picks by the CPU's feature flags: so the peak is the best over OpenBLAS's own choice and the kernels
    the flags allow (OPENBLAS_CORETYPE)."""
    return max(_gemm_rate(threads, core) for core in (None, *_kernels_the_flags_allow()))


def _cpuinfo(text: str | None = None) -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo, or of this text (empty where there is none)."""
    if text is None:
        try:
            text = Path("/proc/cpuinfo").read_text()
        except OSError:
            return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    return fields


def cpu_name(cpuinfo: str | None = None) -> str:
    """What the figures were measured on, as the guide asks beside every figure: the CPU's name (a Pi's board model on
    ARM, where /proc/cpuinfo has no "model name"), x86 family/model (one name covers several generations on a VM) and
    the vector extensions that change int8 and GEMM speed."""
    info = _cpuinfo(cpuinfo)
    name = info.get("model name") or info.get("Model") or platform.processor() or "unknown CPU"
    if "cpu family" in info:
        name += f" (family {info['cpu family']}, model {info.get('model', '?')})"
    flags = (info.get("flags") or info.get("Features", "")).split()
    extensions = [flag for flag in ("avx2", "avx512f", "avx512_vnni", "amx_tile", "asimddp") if flag in flags]
    return name + (f", {' '.join(extensions)}" if extensions else "")


def _kernels_the_flags_allow() -> list[str]:
    """OpenBLAS core types for the x86 vector extensions /proc/cpuinfo lists (none elsewhere)."""
    flags = _cpuinfo().get("flags", "").split()
    return [core for flag, core in (("avx512f", "SkylakeX"), ("avx2", "Haswell")) if flag in flags]


def _gemm_rate(threads: int, core: str | None) -> float:
    code = ("import time, numpy as np; n = 1024; a = np.random.rand(n, n).astype(np.float32); b = a.T.copy(); "
            "[a @ b for _ in range(3)]; ts = []\n"
            "for _ in range(15):\n t = time.perf_counter(); a @ b; ts.append(time.perf_counter() - t)\n"
            "print(2 * n ** 3 / min(ts) / 1e9)")
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    if core is not None:
        env["OPENBLAS_CORETYPE"] = core
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(proc.stdout.strip())
