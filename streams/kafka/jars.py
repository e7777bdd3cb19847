"""The local broker's runtime: a Java 17+ to run it, and its Maven Central jars, verified."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from streams.exceptions import JavaNotFoundError, LocalKafkaError
from streams.settings import LocalKafkaSettings

MIN_JAVA = 17
REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_KAFKA = REPO_ROOT / "deploy" / "kafka"
ALTERNATIVES = (
    "set KAFKA_BOOTSTRAP_SERVERS to an existing Kafka cluster, "
    "or start one with Docker: docker compose -f deploy/docker-compose.yml up -d kafka"
)

Progress = Callable[[str], None]


def no_progress(_: str) -> None:
    return None


def java_executable() -> str:
    """The `java` to run the broker with, checked to be version 17 or newer."""
    home = os.environ.get("JAVA_HOME")
    candidate = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not candidate or not Path(candidate).exists():
        raise JavaNotFoundError(
            f"no Java {MIN_JAVA}+ runtime found for the local broker; {ALTERNATIVES}"
        )
    try:
        out = subprocess.run(
            [candidate, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JavaNotFoundError(f"{candidate} does not run ({exc}); {ALTERNATIVES}") from exc
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise JavaNotFoundError(
            f"{candidate} is Java {major or 'of unknown version'}; the broker needs Java "
            f"{MIN_JAVA}+; {ALTERNATIVES}"
        )
    return candidate


def pinned_checksums(version: str) -> dict[str, str]:
    path = DEPLOY_KAFKA / f"kafka-{version}.sha256"
    if not path.exists():
        pinned = sorted(p.name[6:-7] for p in DEPLOY_KAFKA.glob("kafka-*.sha256"))
        raise LocalKafkaError(
            f"Kafka {version} has no pinned checksums; pinned: {', '.join(pinned)}"
        )
    sums: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split()
            sums[name] = digest
    return sums


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_jars(libs: Path, sums: dict[str, str]) -> list[str]:
    """Names of jars missing, unexpected or not matching their pinned SHA-256."""
    problems = []
    present = {p.name for p in libs.glob("*.jar")} if libs.exists() else set()
    for name, digest in sums.items():
        if name not in present:
            problems.append(f"{name}: missing")
        elif _sha256(libs / name) != digest:
            problems.append(f"{name}: SHA-256 does not match deploy/kafka/")
    problems += [f"{name}: not pinned" for name in sorted(present - set(sums))]
    return problems


def install_jars(settings: LocalKafkaSettings, progress: Progress = no_progress) -> Path:
    """Fetch the broker's jars once with Maven, verify them and cache them; return the folder."""
    version = settings.kafka_version
    sums = pinned_checksums(version)
    libs = settings.cache_dir / f"kafka-{version}" / "libs"
    if libs.exists() and not verify_jars(libs, sums):
        return libs
    mvn = shutil.which("mvn")
    if not mvn:
        raise LocalKafkaError(
            f"Kafka {version} jars are not cached in {libs} and Maven (mvn) is not installed "
            f"to fetch them; install Maven, or {ALTERNATIVES}"
        )
    staging = libs.with_name(f"libs.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    progress(f"fetching Apache Kafka {version} jars with Maven (once) into {libs.parent}")
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(DEPLOY_KAFKA / "pom.xml"),
        f"-Dkafka.version={version}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
        "-DincludeScope=runtime",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=900)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
        raise LocalKafkaError(f"Maven could not fetch Kafka {version} jars:\n{tail}")
    problems = verify_jars(staging, sums)
    if problems:
        shutil.rmtree(staging, ignore_errors=True)
        raise LocalKafkaError("fetched jars failed verification: " + "; ".join(problems[:10]))
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    return libs


def cache_size(settings: LocalKafkaSettings) -> int:
    root = settings.cache_dir
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0
