"""Writing a result file whole or not at all (`fit --save`), with every failure as one InputError.

- `check_target` runs before the work: a folder, a name too long, a missing or read-only folder, or
  an existing file (a dangling symlink counts) without --force is refused at once, not after a fit.
- `write_whole` writes a temporary file in the same folder, then links it into place: `os.link`
  fails if the name exists, so "does it exist?" and "create it" are one atomic step (no race with
  another process); with --force, `os.replace` swaps it in (a symlink there is replaced, not
  followed). The file gets the permissions the umask allows (0666 & ~umask), like any new file.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from llmplan.errors import InputError, quote


def _reason(error: OSError) -> str:
    if error.errno == errno.ENAMETOOLONG:
        return "the file name is too long for the file system"
    return error.strerror or str(error)


def _folder(target: Path) -> Path:
    return target.parent if str(target.parent) else Path(".")


def check_target(path: str, force: bool = False, option: str = "--save") -> Path:
    """The Path to write, or InputError naming why it cannot be written (see the module doc)."""
    if not str(path).strip():
        raise InputError(f"{option} needs a file name")
    if "\x00" in str(path):
        raise InputError(f"{option}: the file name contains a NUL byte")
    target = Path(path).expanduser()
    shown = quote(str(path))
    try:
        if target.is_dir():
            raise InputError(f"{option} {shown} is a folder; give a file name (e.g. {option} my-law.toml)")
        if os.path.lexists(target):
            kind = "a symlink to a missing file" if target.is_symlink() and not target.exists() else "a symlink" if target.is_symlink() else "a file"
            if not force:
                raise InputError(f"{option} {shown} exists ({kind}); pass --force to replace it")
        folder = _folder(target)
        if not folder.is_dir():
            raise InputError(f"{option} {shown}: the folder {quote(str(folder))} does not exist; create it or write elsewhere")
        if len(os.fsencode(target.name)) > _name_max(folder):
            raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))
        # Can we create a file there? A real try (permissions, read-only file systems, ACLs).
        probe_fd, probe = tempfile.mkstemp(prefix=f".{target.name[:200]}.", suffix=".tmp", dir=folder)
        os.close(probe_fd)
        os.unlink(probe)
    except InputError:
        raise
    except OSError as error:
        raise InputError(f"cannot write {option} {shown}: {_reason(error)}") from None
    return target


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_whole(path: str, text: str, force: bool = False, option: str = "--save") -> None:
    """Write text to path whole or not at all, never over an existing file unless force."""
    target = check_target(path, force, option)
    shown = quote(str(path))
    folder = _folder(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:200]}.", suffix=".tmp", dir=folder)
    except OSError as error:
        raise InputError(f"cannot write {option} {shown}: {_reason(error)}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        if force:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # atomic: fails with EEXIST if the name appeared meanwhile
            except FileExistsError:
                raise InputError(f"{option} {shown} exists; pass --force to replace it") from None
            except OSError as error:
                if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                    raise
                _write_exclusive(target, text, shown, option)  # a file system without hard links
            os.unlink(tmp)
    except InputError:
        _remove(tmp)
        raise
    except OSError as error:
        _remove(tmp)
        raise InputError(f"cannot write {option} {shown}: {_reason(error)}") from None
    except BaseException:  # Ctrl-C mid-write: no partial file, no temporary left behind
        _remove(tmp)
        raise


def _write_exclusive(target: Path, text: str, shown: str, option: str) -> None:
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        raise InputError(f"{option} {shown} exists; pass --force to replace it") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    except BaseException:
        _remove(str(target))
        raise


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
