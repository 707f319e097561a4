"""Benchmark: what the machine charges for memory a process touches for the first time.

Every timing in ``docs/benchmarks.md`` that starts in a fresh process pays for
the memory it touches: the kernel maps a page on its first write (a minor page
fault). On bare metal that costs well under a millisecond per MB. The
project's CPU machine is a virtual machine that hands memory freed for a few
seconds back to its host (``virtio_balloon`` free page reporting), so a page
touched again later has to be backed by the host afresh. This measures, in
child processes, milliseconds per MB of writing a fresh block:

* ``first``: a block in a new process;
* ``reused``: the next block, allocated right after freeing the first (the
  pages come straight back from the kernel's free lists);
* ``after idle``: a block allocated after the process slept ``--idle`` seconds
  with the memory freed.

Blocks come from ``mmap`` (``np.ones`` of ``--mb`` MB), so every round maps
new pages, and the difference between rounds is the cost of backing them.

    python benchmarks/first_touch.py [--mb 300] [--idle 3] [--repeats 3]

Writes docs/benchmarks/first_touch.json; docs/benchmarks.md quotes it.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks" / "first_touch.json"


def _touch(mb: int) -> dict:
    """Write a fresh ``mb``-MB block; wall and system seconds, minor faults."""
    import numpy as np

    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    block = np.ones(mb * 2**20 // 8)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    del block
    return {"ms_per_MB": 1e3 * wall / mb, "system_s": after.ru_stime - before.ru_stime,
            "minor_faults": after.ru_minflt - before.ru_minflt}


def child(mb: int, idle: float) -> dict:
    """One fresh process: first block, a block right after it, a block after idling."""
    first = _touch(mb)
    reused = _touch(mb)
    time.sleep(idle)
    return {"first": first, "reused": reused, "after idle": _touch(mb)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=300, help="block size, MB")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds idle before the last block")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.mb, args.idle)))
        return
    runs = []
    for _ in range(args.repeats):
        cmd = [sys.executable, __file__, "--child", "--mb", str(args.mb), "--idle", str(args.idle)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    summary = {}
    for stage in ("first", "reused", "after idle"):
        values = [r[stage]["ms_per_MB"] for r in runs]
        summary[stage] = {"median_ms_per_MB": statistics.median(values),
                          "min_ms_per_MB": min(values), "max_ms_per_MB": max(values)}
        print(f"{stage:11s} {summary[stage]['median_ms_per_MB']:6.2f} ms/MB "
              f"(range {min(values):.2f}-{max(values):.2f})")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"command": "python benchmarks/first_touch.py", "block_MB": args.mb,
                               "idle_s": args.idle, "summary": summary, "runs": runs}, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
