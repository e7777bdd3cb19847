"""Turn-up input: every check on what a person types or writes in a turn-up file."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Hashable, Iterable, Mapping
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import yaml

from adapters.options import OptionError, check_options
from adapters.registry import adapter_names, declared_options, saas_base_url
from streams.exceptions import TurnupError
from streams.tenancy.tenant import (
    CONNECTOR_OPTIONS,
    RATE_LIMIT_OPTION,
    SCHEMES,
    Connection,
    Scheme,
    Tenant,
    adapter_profile,
    auth_kind_for,
    now_millis,
)

SECRET_REF = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]+\]")
_BASE_PATH = re.compile(r"(?:/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*/?")


# -- validation ----------------------------------------------------------------------------------


def check_secret_ref(ref: str) -> str:
    """A secret reference is an env-var-like name, so it can never be a path or a password."""
    if not SECRET_REF.fullmatch(ref):
        raise TurnupError(
            f"secret ref must be a name like RECEIVER_100_PASSWORD "
            f"(letters, digits, '_', not starting with a digit); got {len(ref)} characters "
            "that are not one (the value is not shown in case it is the secret itself)"
        )
    return ref


def check_host(host: str) -> str:
    """'name' or 'name:port' (IPv6 in brackets), with no scheme, path or credentials."""
    host = host.strip()
    if not host:
        raise TurnupError("host is empty: give the receiver's host name or IP, e.g. api.example")
    if "://" in host:
        raise TurnupError(
            f"host {host!r} contains a scheme: give the host alone and the scheme with --scheme"
        )
    if "@" in host:
        # Never echo it: the part before '@' may be a password.
        raise TurnupError(
            "host contains '@' (credentials?): give the host alone, the user with --username "
            "and the password's name with --secret-ref"
        )
    if "/" in host or "?" in host or "#" in host:
        raise TurnupError(f"host {host!r} contains a path: give the path with --base-path")
    name, port = host, None
    if host.startswith("["):
        end = host.find("]")
        name, rest = host[: end + 1], host[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise TurnupError(f"host {host!r}: expected '[ipv6]' or '[ipv6]:port'")
            port = rest[1:]
        if not _IPV6.fullmatch(name):
            raise TurnupError(f"host {host!r}: not an IPv6 address in brackets")
    else:
        if host.count(":") > 1:
            raise TurnupError(f"host {host!r}: write an IPv6 address in brackets, '[::1]:8080'")
        if ":" in host:
            name, port = host.split(":")
        if not _HOSTNAME.fullmatch(name):
            raise TurnupError(f"host {host!r}: {name!r} is not a host name or IP address")
    if port is not None and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise TurnupError(f"host {host!r}: port must be a number from 1 to 65535")
    return host


def check_base_path(base_path: str) -> str:
    """A URL path starting with '/', without query or fragment; '' means none."""
    path = base_path.strip()
    if path and not path.startswith("/"):
        path = "/" + path
    if not _BASE_PATH.fullmatch(path):
        raise TurnupError(
            f"base path {base_path!r}: give a URL path like /api/v1 (no query, fragment or spaces)"
        )
    return path.rstrip("/")


def _text(value: object, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TurnupError(f"{what} must be text, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise TurnupError(f"{what} is empty")
    return text


def check_clubs(pairs: Iterable[tuple[object, object]]) -> dict[str, str]:
    """InTouch club -> receiver club, one to one: a club belongs to one receiver club."""
    clubs: dict[str, str] = {}
    owners: dict[str, str] = {}
    for raw_intouch, raw_receiver in pairs:
        intouch = _text(raw_intouch, "InTouch club ID")
        receiver = _text(raw_receiver, f"receiver club ID of InTouch club {intouch}")
        if intouch in clubs:
            raise TurnupError(
                f"InTouch club {intouch} is mapped twice ({clubs[intouch]} and {receiver}): "
                "keep one --club for it"
            )
        if receiver in owners:
            raise TurnupError(
                f"receiver club {receiver} is given to InTouch clubs {owners[receiver]} and "
                f"{intouch}: each InTouch club needs its own receiver club"
            )
        clubs[intouch] = receiver
        owners[receiver] = intouch
    if not clubs:
        raise TurnupError("no clubs: give one --club INTOUCH_ID=RECEIVER_ID per club")
    return clubs


def parse_pair(text: str, what: str) -> tuple[str, str]:
    """'left=right' as given to --club and --option."""
    left, sep, right = text.partition("=")
    if not sep or not left.strip():
        raise TurnupError(f"{what} {text!r}: write it as KEY=VALUE")
    return left.strip(), right.strip()


def validate_turnup(
    *,
    client_id: object,
    receiver_client_id: object,
    adapter: str,
    clubs: Iterable[tuple[object, object]],
    host: str | None = None,
    scheme: str = "https",
    username: str | None = None,
    secret_ref: str | None = None,
    base_path: str | None = None,
    options: Mapping[str, object] | None = None,
    configured_at: dt.datetime | None = None,
) -> Tenant:
    """The tenant these inputs describe, or a `TurnupError` saying what to fix.

    `clubs` are (InTouch club, receiver club) pairs, so a club given twice is caught.
    """
    client = _text(client_id, "client ID")
    receiver_client = _text(receiver_client_id, "receiver client ID")
    known = adapter_names()
    if adapter not in known:
        raise TurnupError(f"unknown adapter {adapter!r}: use one of {', '.join(known)}")
    club_map = check_clubs(clubs)
    checked_options: dict[str, str] = {}
    for key, value in (options or {}).items():
        name = _text(key, "option name")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise TurnupError(f"option {name}: value must be text, got {type(value).__name__}")
        checked_options[name] = str(value)
    limit = checked_options.get(RATE_LIMIT_OPTION)
    if limit is not None:
        try:
            valid = float(limit) > 0
        except ValueError:
            valid = False
        if not valid:
            raise TurnupError(
                f"option {RATE_LIMIT_OPTION}={limit!r}: calls a second, a number above 0"
            )
    connection = None
    if host is None:
        saas = saas_base_url(adapter)
        given = [
            flag
            for flag, value in (
                ("--username", username),
                ("--secret-ref", secret_ref),
                ("--base-path", base_path),
            )
            if value is not None
        ]
        if given and (saas is None or base_path is not None):
            raise TurnupError(f"{', '.join(given)} given without --host: give the receiver host")
        if adapter_profile(adapter) is not None and saas is None:
            raise TurnupError(
                f"adapter {adapter!r} calls the receiver's own web API: give --host "
                "(and --scheme, --username, --secret-ref as it needs)"
            )
        if given:
            # A full-SaaS platform: its address is the adapter's, the credentials are ours.
            assert saas is not None
            connection = Connection(
                host=None,
                scheme=cast(Scheme, urlsplit(saas).scheme),
                username=_text(username, "username") if username is not None else None,
                secret_ref=check_secret_ref(secret_ref) if secret_ref is not None else None,
            )
    else:
        if scheme not in SCHEMES:
            raise TurnupError(f"scheme {scheme!r}: use http or https")
        path = check_base_path(base_path) if base_path is not None else ""
        connection = Connection(
            host=check_host(host),
            scheme=cast(Scheme, scheme),
            username=_text(username, "username") if username is not None else None,
            secret_ref=check_secret_ref(secret_ref) if secret_ref is not None else None,
            base_path=path or None,
        )
    adapter_options = {k: v for k, v in checked_options.items() if k not in CONNECTOR_OPTIONS}
    try:
        adapter_options = check_options(adapter, declared_options(adapter), adapter_options)
    except OptionError as exc:
        raise TurnupError(str(exc)) from None
    checked_options.update(adapter_options)
    tenant = Tenant(
        client_id=client,
        receiver_client_id=receiver_client,
        adapter=adapter,
        clubs=club_map,
        connection=connection,
        options=checked_options,
        configured_at=configured_at or now_millis(),
    )
    auth_kind_for(tenant)
    return tenant


_FILE_FIELDS = {
    "client_id",
    "receiver_client_id",
    "adapter",
    "clubs",
    "connection",
    "options",
}
_CONNECTION_FIELDS = {"host", "scheme", "username", "secret_ref", "base_path"}


def _club_pairs(raw: object) -> list[tuple[object, object]]:
    if isinstance(raw, Mapping):
        return list(raw.items())
    if isinstance(raw, list):
        pairs: list[tuple[object, object]] = []
        for item in raw:
            if isinstance(item, str):
                pairs.append(parse_pair(item, "club"))
            elif isinstance(item, Mapping) and set(item) == {"intouch_club_id", "receiver_club_id"}:
                pairs.append((item["intouch_club_id"], item["receiver_club_id"]))
            else:
                raise TurnupError(
                    "clubs: each item is 'INTOUCH_ID=RECEIVER_ID' or "
                    "{intouch_club_id: ..., receiver_club_id: ...}"
                )
        return pairs
    raise TurnupError("clubs: give a mapping INTOUCH_ID: RECEIVER_ID, or a list")


def turnup_from_mapping(data: object) -> Tenant:
    """A tenant from a turn-up file's content (the record's field names)."""
    if not isinstance(data, Mapping):
        raise TurnupError("a turn-up file is a mapping with client_id, adapter, clubs, ...")
    unknown = sorted(set(map(str, data)) - _FILE_FIELDS)
    if unknown:
        raise TurnupError(f"unknown field(s) {unknown}; known: {', '.join(sorted(_FILE_FIELDS))}")
    for required in ("client_id", "receiver_client_id", "adapter", "clubs"):
        if data.get(required) is None:
            raise TurnupError(f"{required} is missing")
    connection = data.get("connection") or {}
    if not isinstance(connection, Mapping):
        raise TurnupError("connection: a mapping with host, scheme, username, secret_ref, ...")
    unknown = sorted(set(map(str, connection)) - _CONNECTION_FIELDS)
    if unknown:
        known = ", ".join(sorted(_CONNECTION_FIELDS))
        raise TurnupError(f"connection: unknown field(s) {unknown}; known: {known}")
    options = data.get("options") or {}
    if not isinstance(options, Mapping):
        raise TurnupError("options: a mapping of name: value")

    def optional_text(key: str) -> str | None:
        value = connection.get(key)
        return None if value is None else _text(value, f"connection.{key}")

    return validate_turnup(
        client_id=data["client_id"],
        receiver_client_id=data["receiver_client_id"],
        adapter=_text(data["adapter"], "adapter"),
        clubs=_club_pairs(data["clubs"]),
        host=optional_text("host"),
        scheme=optional_text("scheme") or "https",
        username=optional_text("username"),
        secret_ref=optional_text("secret_ref"),
        base_path=optional_text("base_path"),
        options=options,
    )


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML loader that refuses a key given twice, which PyYAML would silently overwrite."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise TurnupError(
                    f"line {key_node.start_mark.line + 1}: {key!r} is given twice "
                    "(an InTouch club mapped twice?); keep one"
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_turnup_file(path: Path) -> Tenant:
    """A tenant from a YAML turn-up file (the record's field names)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TurnupError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except TurnupError as exc:
        raise TurnupError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise TurnupError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return turnup_from_mapping(data)
    except TurnupError as exc:
        raise TurnupError(f"{path}: {exc}") from None
