"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def _mode_for(target: Path) -> int:
    """The permissions a plain ``open(target, "w")`` would give: the existing file's, else 0666
    less the umask (mkstemp's 0600 would hide calibration files from other users)."""
    try:
        return target.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write_text(path: str | os.PathLike, text: str, backup: bool = False) -> Path:
    """Write ``text`` to ``path`` atomically (temp file in the same folder, fsync, rename).

    With ``backup`` the previous file, if any, is kept as ``<path>.bak``. Returns the path.
    """
    target = Path(path).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _mode_for(target))
        if backup and target.exists():
            shutil.copy2(target, target.with_name(target.name + ".bak"))
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return target


class FileFieldError(ValueError):
    """A structured file (or dict) is missing, unreadable or invalid; names the file and the field."""

    #: What stands in the message where no field is named.
    NO_FIELD = "file: "

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source, self.field, self.problem = source, field, problem
        where = f"field '{field}': " if field else self.NO_FIELD
        super().__init__(f"{source}: {where}{problem}")


def read_structured(path: str | os.PathLike, error: type[FileFieldError] = FileFieldError) -> Any:
    """Parse a YAML file (JSON if it ends in ``.json``); problems raise ``error`` naming the file."""
    import json

    import yaml

    source = str(path)
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(source, "", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(source, "", f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    if source.lower().endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise error(source, "", f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise error(source, "", f"not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        raise error(source, "", "file is empty")
    return data
