"""The adapter registry: a tenant's turn-up names its adapter, this dict builds it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from adapters.base import ReceiverClient
from adapters.config import ReceiverConfig
from adapters.errors import MisconfiguredError, ProfileError
from adapters.profile import ReceiverProfile, load_profile_dir
from adapters.rest import RestReceiverClient

AdapterFactory = Callable[[ReceiverConfig], ReceiverClient]

PROFILE_DIR = Path(__file__).parent / "profiles"

#: Adapter name -> factory. REST receivers are registered under their profile name.
ADAPTERS: dict[str, AdapterFactory] = {}


def register(name: str, factory: AdapterFactory, *, replace: bool = False) -> None:
    """Add an adapter under `name`; a second registration of a name is an error unless asked."""
    if name in ADAPTERS and not replace:
        raise MisconfiguredError(f"adapter {name!r} is already registered")
    ADAPTERS[name] = factory


def register_profile(profile: ReceiverProfile, *, replace: bool = False) -> None:
    """Register the generic REST adapter driven by `profile` under the profile's name."""
    register(profile.name, functools.partial(RestReceiverClient, profile), replace=replace)


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
