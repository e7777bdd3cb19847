"""The adapter registry: a tenant's turn-up names its adapter, this dict builds it."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path

from adapters.base import ReceiverClient
from adapters.config import ReceiverConfig
from adapters.errors import MisconfiguredError, ProfileError
from adapters.options import OptionSpec
from adapters.profile import ReceiverProfile, load_profile_dir
from adapters.rest import RestReceiverClient

AdapterFactory = Callable[[ReceiverConfig], ReceiverClient]

PROFILE_DIR = Path(__file__).parent / "profiles"

#: Extra profile folders, separated like PATH; read once, when this module is imported.
PROFILES_DIR_ENV = "CONNECTOR_PROFILES_DIR"

#: Entry-point group of adapter classes (or factories) shipped by other packages.
ENTRY_POINT_GROUP = "intouch_connector.adapters"

#: Adapter name -> factory. REST receivers are registered under their profile name.
ADAPTERS: dict[str, AdapterFactory] = {}

#: Adapter name -> the custom options its turn-up may (or must) give.
OPTIONS: dict[str, tuple[OptionSpec, ...]] = {}

#: Adapter name -> the platform's own address, for full-SaaS receivers.
BASE_URLS: dict[str, str] = {}


def register(
    name: str,
    factory: AdapterFactory,
    *,
    options: Sequence[OptionSpec] = (),
    base_url: str | None = None,
    replace: bool = False,
) -> None:
    """Add an adapter under `name`; a second registration of a name is an error unless asked."""
    if name in ADAPTERS and not replace:
        raise MisconfiguredError(f"adapter {name!r} is already registered")
    if not all(isinstance(option, OptionSpec) for option in options):
        raise MisconfiguredError(f"adapter {name!r}: options must be OptionSpec values")
    ADAPTERS[name] = factory
    OPTIONS[name] = tuple(options)
    BASE_URLS.pop(name, None)
    if base_url is not None:
        BASE_URLS[name] = base_url


def register_profile(profile: ReceiverProfile, *, replace: bool = False) -> None:
    """Register the generic REST adapter driven by `profile` under the profile's name."""
    register(
        profile.name,
        functools.partial(RestReceiverClient, profile),
        options=profile.options,
        base_url=profile.base_url,
        replace=replace,
    )


def register_profile_dir(directory: Path, *, replace: bool = False) -> list[str]:
    """Register every profile of a folder (e.g. an operator's own); return their names."""
    profiles = load_profile_dir(directory)
    names = [profile.name for profile in profiles]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ProfileError(f"{directory}: profile name(s) used twice: {duplicates}")
    for profile in profiles:
        register_profile(profile, replace=replace)
    return names


def register_profiles_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """Register the profiles of every folder in CONNECTOR_PROFILES_DIR; their names."""
    value = (os.environ if environ is None else environ).get(PROFILES_DIR_ENV, "")
    names: list[str] = []
    for folder in filter(None, value.split(os.pathsep)):
        directory = Path(folder)
        if not directory.is_dir():
            raise ProfileError(f"{PROFILES_DIR_ENV}: {directory} is not a folder")
        names += register_profile_dir(directory)
    return names


def register_entry_points(found: Iterable[object] | None = None) -> list[str]:
    """Register every adapter of the entry-point group (an installed package's adapters)."""
    names: list[str] = []
    for point in entry_points(group=ENTRY_POINT_GROUP) if found is None else found:
        name = str(getattr(point, "name", point))
        try:
            loaded = point.load()  # type: ignore[attr-defined]
        except Exception as exc:
            raise MisconfiguredError(
                f"entry point {name!r} of {ENTRY_POINT_GROUP}: cannot load ({exc})"
            ) from exc
        if not callable(loaded):
            raise MisconfiguredError(
                f"entry point {name!r}: {loaded!r} is not an adapter class or factory"
            )
        register(
            name,
            loaded,
            options=tuple(getattr(loaded, "options", ())),
            base_url=getattr(loaded, "base_url", None),
        )
        names.append(name)
    return names


def declared_options(name: str) -> tuple[OptionSpec, ...]:
    """The custom options the adapter `name` declares."""
    get_factory(name)
    return OPTIONS.get(name, ())


def saas_base_url(name: str) -> str | None:
    """The platform's own address when the adapter is for a full-SaaS receiver."""
    return BASE_URLS.get(name)


def adapter_names() -> list[str]:
    """Every registered adapter name, sorted."""
    return sorted(ADAPTERS)


def get_factory(name: str) -> AdapterFactory:
    """The factory registered under `name`."""
    try:
        return ADAPTERS[name]
    except KeyError:
        raise MisconfiguredError(
            f"no receiver adapter named {name!r}; known: {', '.join(adapter_names())}"
        ) from None


def create_adapter(name: str, config: ReceiverConfig) -> ReceiverClient:
    """Build the adapter a tenant's turn-up names, bound to its receiver config."""
    return get_factory(name)(config)


register_profile_dir(PROFILE_DIR)
register_profiles_from_env()
register_entry_points()
