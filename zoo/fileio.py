"""One way to write a file atomically: a temporary name of this process's own, then ``os.replace``.

A reader (or a shard of the same grid on another host writing into one shared folder) sees either the old file
or the new one, never half of one; a crash leaves at most a hidden ``.NAME.HOST.PID.tmp`` that is removed on the
next write from the same process and ignored by every reader.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path

from zoo.errors import OptionError

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "output_dir", "temporary_name"]


def temporary_name(path: Path) -> Path:
    """A hidden name next to ``path``, unique to this host and process, keeping the suffix (savefig reads it)."""
    return path.with_name(f".{path.stem}.{socket.gethostname()}.{os.getpid()}.tmp{path.suffix}")


def atomic_write(path: str | Path, write: Callable[[Path], object], *, fsync: bool = True) -> Path:
    """Call ``write(tmp)`` to fill a temporary file, then move it over ``path`` in one step.

    Args:
        path: the destination; its folder is created.
        write: writes the whole content to the path it is given (``save_file``, ``torch.save``, ``fig.savefig``).
        fsync: flush the temporary file to disk before the rename (a power cut then leaves the old or new file).

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        write(tmp)
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` atomically."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    return atomic_write(path, write)


def output_dir(path: str | Path, *, what: str = "--out", owned: Sequence[str] | None = None) -> Path:
    """Create the output folder ``path`` (with its parents), or raise ``OptionError`` saying why it cannot be.

    Args:
        path: the folder.
        what: how messages name it (``--out``).
        owned: names that mark a folder as this command's own (``config.json`` for a run folder): a folder that
            already holds files but none of these is refused, so a command never writes into someone else's
            folder. ``None`` accepts any folder (``zoo predict`` writes next to whatever is there).

    Returns:
        ``path``, existing.

    Raises:
        OptionError: ``path`` is a file, lies under a file, cannot be created, or is a foreign non-empty folder.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OptionError(f"{what} {str(path)!r} is a file, not a folder; give a folder path")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        raise OptionError(f"{what} {str(path)!r} cannot be created: {str(blocker or path.parent)!r} is a file, "
                          f"not a folder") from None
    except OSError as exc:  # permission denied, read-only file system, name too long
        raise OptionError(f"{what} {str(path)!r} cannot be created: {exc.strerror or exc}") from None
    if owned is not None:
        entries = [p.name for p in path.iterdir() if not p.name.startswith(".")]
        if entries and not any(name in entries for name in owned):
            shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
            raise OptionError(f"{what} {str(path)!r} already holds other files ({shown}) and none of this "
                              f"command's ({', '.join(owned)}); give a new or empty folder")
    return path
