"""`python -m bench`: every benchmark, one after the other."""

from __future__ import annotations

import subprocess
import sys

for module in ("bench.transport", "bench.pipeline"):
    print(f"== {module}", flush=True)
    subprocess.run([sys.executable, "-m", module], check=True)
