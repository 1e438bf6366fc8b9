"""Run folders that never trace back: checked before the run, marked until their last file is written.

A run can fail to write for reasons that are the machine's, not netbed's: `runs/` made by root and
used by someone else, `--out` naming a file or a read-only mount, a disk that fills up while the
pcaps grow. Each is one line and exit code 2. What can be checked is checked before anything is
built; what can only happen while writing (ENOSPC) leaves a folder that says it is incomplete: the
marker file is created with the folder — an empty file needs no data block, so it exists even when
the disk is full later — and removed only after the run's last file is written.
"""
from __future__ import annotations

import errno
import os
import pwd
from pathlib import Path

from netbed.errors import NetbedError

INCOMPLETE = "INCOMPLETE"  # present while a run folder is being written; left behind if writing failed


def check_base(path: Path, what: str = "--out") -> None:
    """Fail now, in one line, if run folders could not be made at or under `path`."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NetbedError(f"{what} {path} is a file, not a folder")
    existing = path.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise NetbedError(f"cannot make {path}: {existing} is a file, not a folder")
    if os.statvfs(existing).f_flag & os.ST_RDONLY:
        raise NetbedError(f"cannot write run folders in {path}: {existing} is on a read-only file system")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise NetbedError(f"cannot write run folders in {path}: {existing} is not writable by "
                          f"{_user(os.geteuid())} (it belongs to {_user(existing.stat().st_uid)})")


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def start(path: Path, exist_ok: bool = True) -> Path:
    """Make the run folder and mark it incomplete (FileExistsError passes through for a new_run_dir retry)."""
    try:
        path.mkdir(parents=True, exist_ok=exist_ok)
        (path / INCOMPLETE).write_text("")
    except FileExistsError:
        if not exist_ok:
            raise
        raise NetbedError(f"cannot make run folder {path}: a file is in the way") from None
    except OSError as exc:
        raise NetbedError(f"cannot make run folder {path}: {exc.strerror}") from None
    return path


def finish(path: Path) -> None:
    """The run wrote its last file: the folder is complete."""
    (path / INCOMPLETE).unlink(missing_ok=True)


def write_failed(path: Path, exc: OSError, what: str = "run folder") -> NetbedError:
    """The one-line error for a run that could not write its folder; the folder stays marked incomplete."""
    reason = exc.strerror or str(exc)
    try:  # say why inside the marker too, if the disk still takes a few bytes
        (path / INCOMPLETE).write_text(f"the run stopped while writing: {reason}\n")
    except OSError:
        pass
    where = f" ({exc.filename})" if exc.filename else ""
    hint = " — free some space or choose another --out" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return NetbedError(f"cannot write {what} {path}: {reason}{where}; it is left marked {INCOMPLETE}{hint}")


def require_complete(path: Path) -> None:
    """Offline commands refuse a folder whose run never finished writing it."""
    marker = Path(path) / INCOMPLETE
    if marker.exists():
        try:
            why = marker.read_text().strip()
        except OSError:
            why = ""
        raise NetbedError(f"{path} is an incomplete run folder ({why or 'its run did not finish writing it'})")
