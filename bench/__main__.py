"""`python -m bench`: every benchmark, one after the other."""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = (
    ("bench.transport",),
    ("bench.pipeline",),
    ("bench.peer", "--quick"),
    ("bench.stages", "--quick"),
    ("bench.latency", "--quick"),
    ("bench.scaleout", "--quick"),
    ("bench.floor", "--quick"),
)
for module, *args in BENCHMARKS:
    print(f"== {module}", flush=True)
    subprocess.run([sys.executable, "-m", module, *args], check=True)
