"""Network architectures by name. ``build_net(name, in_channels, n_classes, size, **kw)`` makes one.

Add a network with ``@register_net("name")`` on a builder taking
``(in_channels: int, n_classes: int, size: tuple[int, int], **kw) -> nn.Module``, in any module of this
package: every one is imported before a lookup (:func:`pipelines.discovery.import_submodules`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from torch import nn

from pipelines.discovery import import_submodules

_NETS: dict[str, Callable[..., nn.Module]] = {}


def register_net(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _NETS[name] = fn
        return fn

    return deco


def list_nets() -> list[str]:
    _load()
    return sorted(_NETS)


def build_net(name: str, in_channels: int, n_classes: int, size: tuple[int, int], **kw) -> nn.Module:
    _load()
    if name not in _NETS:
        close = difflib.get_close_matches(name, list(_NETS), n=3)
        raise KeyError(f"unknown network {name!r}; known: {sorted(_NETS)}" + (f" (did you mean {close}?)" if close else ""))
    return _NETS[name](in_channels=in_channels, n_classes=n_classes, size=size, **kw)


def _load() -> None:
    import_submodules(__name__)  # each module registers the networks it defines
