"""Which memory allocator this process uses, and a one-time hint when a faster one would help.

On the CPU, PyTorch allocates and frees large activation buffers at every step. With glibc's ``malloc`` these
go back to the kernel and fault in again page by page: on a 2-core VM 15-45% of CPU time went to page faults,
and preloading tcmalloc made a width-64 U-Net train step about 1.33x faster (see ``benchmarks/README.md``).
An allocator can only be swapped before the process starts, with ``LD_PRELOAD``::

    sudo apt-get install libtcmalloc-minimal4          # Debian/Ubuntu
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 zoo bench --models unet,unet-attn

or with PyTorch's own launcher, which finds and preloads tcmalloc or jemalloc itself::

    python -m torch.backends.xeon.run_cpu --enable-tcmalloc -m zoo bench --models unet,unet-attn

:func:`detect_allocator` reads the shared objects mapped into this process; :func:`hint_once` logs the recipe
at most once per user and machine (a marker file under ``~/.cache/segzoo``) and once per process tree.
"""

from __future__ import annotations

import ctypes.util
import logging
import os
import socket
from pathlib import Path

__all__ = ["ALLOCATORS", "detect_allocator", "find_library", "preload_env", "recipe", "hint_once",
           "HINT_ENV", "NO_HINT_ENV"]

log = logging.getLogger(__name__)

#: allocator name -> substrings of its shared object's file name
ALLOCATORS: dict[str, tuple[str, ...]] = {
    "tcmalloc": ("libtcmalloc",),
    "jemalloc": ("libjemalloc",),
    "mimalloc": ("libmimalloc",),
}
HINT_ENV = "ZOO_ALLOCATOR_HINTED"  # set once the hint was considered, so child processes stay quiet
NO_HINT_ENV = "ZOO_NO_ALLOCATOR_HINT"  # set to 1 to never show the hint
_SEARCH_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
                "/usr/local/lib", "/opt/homebrew/lib")
_LIBRARIES = {"tcmalloc": ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4"), "jemalloc": ("libjemalloc.so.2",)}


def detect_allocator(maps: str | Path = "/proc/self/maps") -> str:
    """The allocator of this process: ``tcmalloc``, ``jemalloc``, ``mimalloc``, ``glibc`` or ``unknown``.

    Reads the shared objects mapped into the process (Linux ``/proc/self/maps``); a preloaded allocator
    replaces ``malloc`` for everything, PyTorch included. ``unknown`` where there is no ``/proc`` (macOS,
    Windows), ``glibc`` on Linux when none of :data:`ALLOCATORS` is mapped.
    """
    try:
        text = Path(maps).read_text(errors="replace")
    except OSError:
        return "unknown"
    names = {line.rsplit("/", 1)[-1] for line in text.splitlines() if "/" in line}
    for allocator, needles in ALLOCATORS.items():
        if any(needle in name for name in names for needle in needles):
            return allocator
    return "glibc"


def find_library(allocator: str = "tcmalloc") -> Path | None:
    """An installed shared object for ``allocator`` (``tcmalloc`` or ``jemalloc``), or ``None``."""
    for directory in _SEARCH_DIRS:
        for name in _LIBRARIES.get(allocator, ()):
            path = Path(directory) / name
            if path.exists():
                return path
    found = ctypes.util.find_library("tcmalloc_minimal" if allocator == "tcmalloc" else allocator)
    if found and Path(found).is_absolute() and Path(found).exists():
        return Path(found)
    return None


def preload_env(allocator: str = "tcmalloc", env: dict[str, str] | None = None) -> dict[str, str] | None:
    """A copy of ``env`` (default ``os.environ``) with ``allocator`` added to ``LD_PRELOAD``.

    Returns ``None`` when the library is not installed. For starting worker processes with a faster allocator.
    """
    library = find_library(allocator)
    if library is None:
        return None
    out = dict(os.environ if env is None else env)
    preload = [p for p in out.get("LD_PRELOAD", "").split(":") if p]
    if str(library) not in preload:
        out["LD_PRELOAD"] = ":".join([str(library), *preload])
    return out


def recipe() -> str:
    """How to run with tcmalloc on this machine, in one or two lines."""
    library = find_library("tcmalloc")
    if library is not None:
        return f"run with LD_PRELOAD={library} (or: python -m torch.backends.xeon.run_cpu --enable-tcmalloc -m zoo ...)"
    return ("install tcmalloc (Debian/Ubuntu: apt-get install libtcmalloc-minimal4) and run with "
            "LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4, or use "
            "python -m torch.backends.xeon.run_cpu --enable-tcmalloc -m zoo ...")


def _marker(cache_dir: str | Path | None) -> Path:
    base = Path(cache_dir) if cache_dir is not None else Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "segzoo"
    return base / f"allocator-hint-{socket.gethostname()}"


def hint_once(*, cache_dir: str | Path | None = None, maps: str | Path = "/proc/self/maps") -> bool:
    """Log a hint (warning level) when the CPU runs on glibc's ``malloc``; at most once per user and machine.

    Quiet when a faster allocator is in use, when the platform has no ``/proc`` (``unknown``), in a child of a
    process that already considered the hint, after the hint was shown on this machine (a marker file in
    ``cache_dir``, default ``~/.cache/segzoo``), or when ``ZOO_NO_ALLOCATOR_HINT`` is set.

    Returns:
        Whether the hint was logged.
    """
    if os.environ.get(HINT_ENV) or os.environ.get(NO_HINT_ENV):
        return False
    os.environ[HINT_ENV] = "1"  # inherited by benchmark cells and workers
    if detect_allocator(maps) != "glibc":
        return False
    marker = _marker(cache_dir)
    if marker.exists():
        return False
    log.warning("CPU training runs on glibc malloc, which spends much of its time in page faults here; "
                "tcmalloc made a train step 1.1-1.3x faster. To use it, %s. (Shown once; the allocator is "
                "recorded in every benchmark row.)", recipe())
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("shown\n")
    except OSError:  # a read-only home: the hint may show again, which is harmless
        pass
    return True
