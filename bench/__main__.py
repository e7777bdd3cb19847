"""`python -m bench`: every benchmark, one after the other."""

from __future__ import annotations

import subprocess
import sys

for module, *args in (("bench.transport",), ("bench.pipeline",), ("bench.peer", "--quick")):
    print(f"== {module}", flush=True)
    subprocess.run([sys.executable, "-m", module, *args], check=True)
