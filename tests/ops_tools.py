"""Operations tools that users run beside the connector (Prometheus and promtool, Burrow,
ZooKeeper, kcat), from Debian's packages: installed on first use, never skipped.

A test that needs one calls `require_tool`; when the tool is missing it is installed with
`apt-get` (CI runs on a fresh machine as root). When that cannot be done the test fails with
what was tried: it never skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

#: Debian package of each tool's binary.
PACKAGES = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "burrow": "burrow",
    "kcat": "kcat",
    "zookeeper": "zookeeper",  # no binary of its own: its jars are under /usr/share/java
}

#: Binaries whose name differs from the tool's (Debian's burrow installs /usr/bin/Burrow).
BINARIES = {"burrow": "Burrow"}

#: Where Debian's zookeeper package puts its jars (it has no launcher on PATH); zookeeper.jar
#: names the jars it needs in its manifest, so it alone is the classpath.
ZOOKEEPER_JARS = Path("/usr/share/java")

_lock = threading.Lock()
_updated = False


def _present(tool: str) -> Path | None:
    if tool == "zookeeper":
        jar = ZOOKEEPER_JARS / "zookeeper.jar"
        return jar if jar.exists() else None
    found = shutil.which(BINARIES.get(tool, tool))
    return Path(found) if found else None


def require_tool(tool: str, timeout: float = 900.0) -> Path:
    """The path of `tool` (for zookeeper, its jar), installing its Debian package first when it
    is missing."""
    global _updated
    with _lock:
        found = _present(tool)
        if found is not None:
            return found
        package = PACKAGES[tool]
        if os.geteuid() != 0:
            pytest.fail(
                f"{tool} is missing and installing {package} needs root: apt-get install {package}"
            )
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        steps = [["apt-get", "install", "-y", "--no-install-recommends", package]]
        if not _updated:
            steps.insert(0, ["apt-get", "update"])
        for step in steps:
            done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=timeout)
            if done.returncode != 0:
                pytest.fail(
                    f"cannot install {package} for {tool}: `{' '.join(step)}` exited "
                    f"{done.returncode}: {done.stderr.strip()[-2000:]}"
                )
            if step[1] == "update":
                _updated = True
        found = _present(tool)
        if found is None:
            pytest.fail(f"installed {package}, but {tool} is still not found")
        return found
