"""``bench.host``: the processor's model and its L2's size, read from /proc and /sys trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import host
from bench.cli import cold_sweep

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R)   Processor
flags\t\t: fpu sse2

processor\t: 1
model name\t: Intel(R) Xeon(R)   Processor
"""


def _caches(root: Path, cpu: int, caches: list[tuple[str, str, str]]) -> Path:
    for n, (level, kind, size) in enumerate(caches):
        index = root / f"devices/system/cpu/cpu{cpu}/cache/index{n}"
        index.mkdir(parents=True)
        for name, value in (("level", level), ("type", kind), ("size", size)):
            (index / name).write_text(value + "\n")
    return root


def test_model_is_the_first_model_name_with_its_spaces_collapsed(tmp_path: Path) -> None:
    (tmp_path / "cpuinfo").write_text(CPUINFO)
    assert host.model(tmp_path) == "Intel(R) Xeon(R) Processor"


@pytest.mark.parametrize("cpuinfo", [None, "processor\t: 0\nBogoMIPS\t: 50.00\n"])
def test_model_is_unknown_without_cpuinfo_or_a_model_name(tmp_path: Path, cpuinfo: str | None) -> None:
    if cpuinfo is not None:
        (tmp_path / "cpuinfo").write_text(cpuinfo)
    assert host.model(tmp_path) == "unknown"


def test_l2_is_the_level_2_unified_or_data_cache_of_that_cpu(tmp_path: Path) -> None:
    _caches(tmp_path, 0, [("1", "Data", "48K"), ("1", "Instruction", "64K"), ("2", "Unified", "2048K"),
                          ("3", "Unified", "491520K")])
    _caches(tmp_path, 1, [("1", "Data", "32K"), ("2", "Data", "1M")])
    assert host.l2_bytes(0, tmp_path) == 2 << 20
    assert host.l2_bytes(1, tmp_path) == 1 << 20


@pytest.mark.parametrize("caches", [[], [("1", "Data", "48K"), ("2", "Instruction", "512K")],
                                    [("2", "Unified", "big")]])
def test_l2_is_none_where_the_kernel_does_not_give_its_size(tmp_path: Path, caches: list[tuple[str, str, str]]) -> None:
    _caches(tmp_path, 0, caches)
    assert host.l2_bytes(0, tmp_path) is None


def test_sizes_in_bytes_kib_and_mib() -> None:
    assert [host._size(t) for t in ("524288", "512K", "2M", "1G", "K", "")] == [
        512 << 10, 512 << 10, 2 << 20, 1 << 30, None, None]


def test_this_machine_gives_a_model_and_the_cold_sweep_is_twice_its_l2() -> None:
    """The benchmarks run here: where its kernel gave no L2 size the cold figure would not be cold."""
    assert host.model() != "unknown"
    l2 = host.l2_bytes(0)
    assert l2 is not None and l2 >= 256 << 10
    assert cold_sweep() == 2 * l2
