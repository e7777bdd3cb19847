"""What the local broker needs for SASL_SSL: a private CA, a broker certificate, a SCRAM user."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from streams.exceptions import LocalKafkaError
from streams.settings import KafkaSettings

#: The SCRAM user the local secured broker knows, and its mechanism.
USERNAME = "connector"
MECHANISM = "SCRAM-SHA-512"
#: The broker certificate's names: clients check the address they dial against them.
SUBJECT_ALT_NAMES = "SAN=ip:127.0.0.1,dns:localhost"
VALIDITY_DAYS = "825"


def keytool_executable(java: str) -> str:
    """The `keytool` of the JDK that runs the broker (else the one on PATH)."""
    beside = Path(java).resolve().parent / "keytool"
    if beside.exists():
        return str(beside)
    found = shutil.which("keytool")
    if not found:
        raise LocalKafkaError(f"no keytool beside {java} or on PATH to make the broker's TLS keys")
    return found


def write_private(path: Path, text: str) -> None:
    """Write `text` to a file only its owner may read (mode 0600 from the start)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _keytool(keytool: str, *args: str) -> None:
    result = subprocess.run(
        [keytool, *args], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise LocalKafkaError(
            f"keytool {args[0]} failed: {(result.stdout + result.stderr).strip()[-1000:]}"
        )


def make_ca(keytool: str, folder: Path, store_password: str, name: str) -> Path:
    """A self-signed CA in `folder/ca.p12`; returns its certificate as PEM (`folder/ca.pem`)."""
    folder.mkdir(parents=True, exist_ok=True)
    store, pem = folder / "ca.p12", folder / "ca.pem"
    store.unlink(missing_ok=True)
    common = ["-storetype", "PKCS12", "-storepass", store_password]
    _keytool(keytool, "-genkeypair", "-alias", "ca", "-keyalg", "RSA", "-keysize", "2048",
             "-dname", f"CN={name}", "-ext", "bc:c", "-validity", "3650",
             "-keystore", str(store), *common)  # fmt: skip
    _keytool(keytool, "-exportcert", "-rfc", "-alias", "ca", "-keystore", str(store),
             "-file", str(pem), *common)  # fmt: skip
    return pem


@dataclass(frozen=True)
class SecureMaterial:
    """Files and secrets of the secured local broker, all under `folder`."""

    folder: Path

    @property
    def ca_pem(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def keystore(self) -> Path:
        return self.folder / "broker.p12"

    @property
    def password_file(self) -> Path:
        return self.folder / "sasl-password"

    @property
    def store_password_file(self) -> Path:
        return self.folder / "keystore-password"

    def exists(self) -> bool:
        files = (self.ca_pem, self.keystore, self.password_file, self.store_password_file)
        return all(p.exists() for p in files)

    def sasl_password(self) -> SecretStr:
        return SecretStr(self.password_file.read_text().strip())

    def store_password(self) -> str:
        return self.store_password_file.read_text().strip()

    def create(self, java: str) -> None:
        """A new CA, a broker key signed by it, and a new SCRAM password (kept mode 0600)."""
        keytool = keytool_executable(java)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        store_password = secrets.token_hex(16)
        write_private(self.store_password_file, store_password + "\n")
        make_ca(keytool, self.folder, store_password, "intouch-connector local CA")
        common = ["-storetype", "PKCS12", "-storepass", store_password]
        csr, signed = self.folder / "broker.csr", self.folder / "broker.pem"
        ca_store = str(self.folder / "ca.p12")
        self.keystore.unlink(missing_ok=True)
        _keytool(keytool, "-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize",
                 "2048", "-dname", "CN=127.0.0.1", "-ext", SUBJECT_ALT_NAMES,
                 "-validity", VALIDITY_DAYS, "-keystore", str(self.keystore), *common)  # fmt: skip
        _keytool(keytool, "-certreq", "-alias", "broker", "-keystore", str(self.keystore),
                 "-file", str(csr), *common)  # fmt: skip
        _keytool(keytool, "-gencert", "-alias", "ca", "-keystore", ca_store, "-infile", str(csr),
                 "-outfile", str(signed), "-rfc", "-ext", SUBJECT_ALT_NAMES,
                 "-ext", "KU=digitalSignature,keyEncipherment", "-ext", "EKU=serverAuth",
                 "-validity", VALIDITY_DAYS, *common)  # fmt: skip
        _keytool(keytool, "-importcert", "-noprompt", "-alias", "ca", "-file", str(self.ca_pem),
                 "-keystore", str(self.keystore), *common)  # fmt: skip
        _keytool(keytool, "-importcert", "-alias", "broker", "-file", str(signed),
                 "-keystore", str(self.keystore), *common)  # fmt: skip
        # Hex only: the storage tool's --add-scram parses `,`, `=` and `]` itself.
        write_private(self.password_file, secrets.token_hex(24) + "\n")

    def broker_properties(self, listener: str) -> dict[str, str]:
        """server.properties lines for a SASL_SSL listener named `listener`."""
        name = listener.lower()
        return {
            "sasl.enabled.mechanisms": MECHANISM,
            f"listener.name.{name}.sasl.enabled.mechanisms": MECHANISM,
            f"listener.name.{name}.{MECHANISM.lower()}.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(self.keystore),
            "ssl.keystore.password": self.store_password(),
            "ssl.client.auth": "none",
        }

    def scram_argument(self) -> str:
        """`kafka-storage format --add-scram` value creating the user at format time."""
        password = self.sasl_password().get_secret_value()
        return f"{MECHANISM}=[name={USERNAME},password={password}]"

    def client_settings(self, bootstrap: str) -> KafkaSettings:
        """KAFKA_* settings of a client of this broker."""
        return KafkaSettings.model_construct(
            bootstrap_servers=bootstrap,
            security_protocol="SASL_SSL",
            sasl_mechanism=MECHANISM,
            sasl_username=USERNAME,
            sasl_password=self.sasl_password(),
            ssl_cafile=self.ca_pem,
            consumer_config={},
        )

    def exports(self, bootstrap: str) -> list[str]:
        """The `export` lines a user pastes; the password is read from its file, not shown."""
        return [
            f"export KAFKA_BOOTSTRAP_SERVERS={bootstrap}",
            "export KAFKA_SECURITY_PROTOCOL=SASL_SSL",
            f"export KAFKA_SASL_MECHANISM={MECHANISM}",
            f"export KAFKA_SASL_USERNAME={USERNAME}",
            f'export KAFKA_SASL_PASSWORD="$(cat {self.password_file})"',
            f"export KAFKA_SSL_CAFILE={self.ca_pem}",
        ]
