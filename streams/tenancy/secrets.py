"""Resolves secret references from turn-up records to values, from the environment or files."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr

from streams.exceptions import ConfigurationError
from streams.tenancy.turnup import check_secret_ref


class SecretResolver:
    """A reference names an env var, else a file of `secrets_dir`; values never leave SecretStr."""

    def __init__(self, secrets_dir: Path | None, environ: Mapping[str, str] | None = None) -> None:
        self.secrets_dir = secrets_dir
        self._environ = os.environ if environ is None else environ

    def __repr__(self) -> str:
        return f"SecretResolver(secrets_dir={self.secrets_dir!r})"

    def resolve(self, ref: str) -> SecretStr:
        """The secret named `ref`; a `ConfigurationError` naming where it looked when missing."""
        check_secret_ref(ref)
        from_env = self._environ.get(ref)
        if from_env:
            return SecretStr(from_env)
        looked = [f"environment variable {ref}" + (" (empty)" if from_env == "" else "")]
        if self.secrets_dir is None:
            looked.append("no secrets folder (CONNECTOR_SECRETS_DIR is unset)")
        else:
            path = self.secrets_dir / ref
            try:
                from_file = path.read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                looked.append(f"file {path} (missing)")
            except OSError as exc:
                looked.append(f"file {path} ({exc.strerror})")
            else:
                if from_file:
                    return SecretStr(from_file)
                looked.append(f"file {path} (empty)")
        raise ConfigurationError(f"secret {ref} not found; looked at: {'; '.join(looked)}")
