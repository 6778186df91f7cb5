"""Errors raised by zoo. Every ``ZooError`` is a usage error: the CLI prints its message on one line and exits 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ZooError(Exception):
    """Base class for errors caused by the user's input or environment (not by a bug in zoo)."""


class UnknownNameError(ZooError, KeyError):
    """A model, dataset, metric (or other named choice) that does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PluginLoadError(ZooError):
    """A plugin failed to import or register (raised in strict mode, or when its names are requested)."""


class DuplicateNameError(PluginLoadError):
    """Two plugins registered the same name (raised in strict mode, or by ``Registry.add``)."""


class PluginUnavailable(ZooError):
    """Raised by a plugin module at import when an optional dependency is missing.

    The plugin is listed as ``unavailable`` with this message (say how to fix it: ``install segzoo[smp]``) and
    registers nothing. Unlike a failure it is not an error in strict mode: an extra that is not installed is a
    choice, not a broken plugin. Asking for a name it would have provided quotes the message.
    """


class OptionError(ZooError, TypeError):
    """An option that the builder does not accept, or a value that cannot be parsed."""


class DatasetError(ZooError, ValueError):
    """Bad data: a missing, corrupt or inconsistent file, or an invalid split."""


class OversizedImageError(DatasetError):
    """An image file over the pixel limit (a possible decompression bomb); it is refused before decoding."""


class ModelContractError(ZooError):
    """A model whose forward broke the model contract: not one float Tensor of logits ``(N, num_classes, H, W)``.

    The message names the model and its plugin (where known), what it returned and what is expected.
    """


class CheckpointError(ZooError):
    """A checkpoint that cannot be loaded safely or does not match the model."""


class ExportError(ZooError):
    """A model that cannot be exported (the message names the operator or construct), or a missing exporter."""


def unknown_name_message(kind: str, name: str, choices: Iterable[str]) -> str:
    """``unknown model 'unet-atn'; did you mean 'unet-attn'? available: unet, unet-attn, ...``."""
    choices = sorted(choices)
    message = f"unknown {kind} {name!r}"
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    if close:
        message += "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    message += "; available: " + (", ".join(choices) if choices else f"none (no {kind} plugins are loaded)")
    return message


def check_choice(kind: str, value: str, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ``UnknownNameError`` naming them."""
    choices = list(choices)
    if value not in choices:
        raise UnknownNameError(unknown_name_message(kind, value, choices))
    return value
