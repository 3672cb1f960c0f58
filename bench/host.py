"""What processor the benchmarks ran on: its model and the size of a core's L2 cache, read from Linux.

A report without them cannot be compared with another: on 2026-11-29 this project's machine went from
an AMD EPYC VM with 512 KiB of L2 per core to an Intel Xeon one with 2 MiB, and the decision's "cold"
figure, which reads memory between calls to push the decision's code and data out of L2, had been
sized for the first.
"""

from __future__ import annotations

from pathlib import Path

PROC = Path("/proc")
SYS = Path("/sys")


def model(proc: Path = PROC) -> str:
    """The first ``model name`` in ``/proc/cpuinfo``; "unknown" where there is none (some ARM kernels)."""
    try:
        text = (proc / "cpuinfo").read_text()
    except OSError:
        return "unknown"
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "model name":
            return " ".join(value.split())
    return "unknown"


def l2_bytes(cpu: int, sys: Path = SYS) -> int | None:
    """The size of ``cpu``'s level-2 cache (data or unified), or None where the kernel does not say."""
    for index in sorted((sys / f"devices/system/cpu/cpu{cpu}/cache").glob("index*")):
        try:
            level, kind, size = ((index / f).read_text().strip() for f in ("level", "type", "size"))
        except OSError:
            continue
        if level == "2" and kind in ("Unified", "Data"):
            return _size(size)
    return None


def _size(text: str) -> int | None:
    """sysfs's cache sizes: "2048K", "1M", or plain bytes."""
    unit = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:].upper(), 1)
    digits = text[:-1] if unit != 1 else text
    return int(digits) * unit if digits.isdigit() else None
