"""Peak resident memory of this process over a block of code (Linux), for the bench scripts."""

from __future__ import annotations

import re


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        return int(re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.M).group(1))


class PeakResident:
    """The process's peak resident memory (MB) above its resident memory at the start of the block: the
    peak is reset through /proc/self/clear_refs, so it counts C buffers (database drivers, openpyxl,
    WeasyPrint) as well as Python's own allocations."""

    def __enter__(self) -> PeakResident:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # the peak (VmHWM) starts again from the current resident size
        self.start = _status_kb("VmRSS")
        return self

    def __exit__(self, *exc) -> None:
        self.mb = (_status_kb("VmHWM") - self.start) / 1024
