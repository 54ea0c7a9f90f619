"""The memory guard's helpers (``hmmrnn._memory``) against /proc/meminfo read independently."""

from __future__ import annotations

import os

import pytest

from hmmrnn._memory import available_memory, gigabytes


def test_available_memory_is_what_the_kernel_reports():
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    available = available_memory()
    assert 0 < available <= physical
    try:
        fields = dict(line.split(":", 1) for line in open("/proc/meminfo", encoding="ascii"))
    except OSError:
        pytest.skip("no /proc/meminfo on this system")
    reported = int(fields["MemAvailable"].split()[0]) * 1024
    assert abs(available - reported) < 0.05 * physical  # both read now; other processes move it a little


def test_gigabytes_known_answers():
    assert gigabytes(22.7e9) == "22.7 GB"
    assert gigabytes(1.6e17) == "1.6e+08 GB"
    assert gigabytes(0) == "0 GB"
