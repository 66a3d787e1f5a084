"""The one helper every command writes files with.

``write_text(path, text, within=root)``:

* the file lands inside ``within`` (the project, or the directory the operator named explicitly):
  a path that leaves it, by ``..`` or by a symlink anywhere on the way, is refused;
* the file itself is never written through a symlink (``os.replace`` replaces the link, it does not
  follow it, and an existing symlink at the target is refused rather than silently replaced);
* the content appears atomically (temporary file in the same directory, fsync, rename), so a reader
  never sees half a file and a failure leaves the previous file in place;
* any ``OSError`` becomes a one-line :class:`~ght_socle.errors.SocleError` naming the file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ght_socle.errors import SocleError


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def safe_target(path: Path, within: Path) -> Path:
    """``path`` made absolute, checked to stay inside ``within`` (also once symlinks are resolved) and
    not to be a symlink itself."""
    root = Path(os.path.realpath(within))
    absolute = Path(os.path.abspath(path))
    if absolute in (root, Path(os.path.abspath(within))):
        return root
    if not (_inside(absolute, Path(os.path.abspath(within))) or _inside(absolute, root)):
        raise SocleError(f"outside {within}: refusing to write there", file=path)
    real_parent = Path(os.path.realpath(absolute.parent))
    if not _inside(real_parent, root):
        raise SocleError(f"a symbolic link leads outside {within}: refusing to write there", file=path)
    target = real_parent / absolute.name
    if target.is_symlink():
        raise SocleError("is a symbolic link: refusing to write through it", file=path)
    return target


def explicit_dir(directory: Path) -> Path:
    """A directory the operator named on the command line: the root of what is written there.
    It must not itself be a symlink (the operator named the link, not where it points)."""
    if directory.is_symlink():
        raise SocleError("is a symbolic link: name the real directory", file=directory)
    return Path(os.path.abspath(directory))


def explicit_file(path: Path) -> tuple[Path, Path]:
    """A file the operator named on the command line: (file, the directory it may be written in)."""
    absolute = Path(os.path.abspath(path))
    return absolute, absolute.parent


def ensure_dir(directory: Path, within: Path) -> Path:
    """Create ``directory`` (inside ``within``, no symlink leading out) and return its real path."""
    target = safe_target(directory, within)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise SocleError("exists and is not a directory", file=directory) from None
    except OSError as exc:
        raise SocleError(f"cannot create the directory: {exc.strerror or exc}", file=directory) from None
    # Checked again once it exists: a link created meanwhile must not redirect the writes.
    return safe_target(target, within)


def write_text(path: Path, text: str, *, within: Path, mode: int = 0o644) -> Path:
    """Write ``text`` to ``path`` atomically, inside ``within``, never through a symlink; return the path."""
    target = safe_target(path, within)
    ensure_dir(target.parent, within)
    temp: str | None = None
    try:
        handle, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp, mode)
        if target.is_symlink():  # appeared meanwhile
            raise SocleError("is a symbolic link: refusing to write through it", file=path)
        os.replace(temp, target)
        temp = None
    except IsADirectoryError:
        raise SocleError("is a directory: cannot write a file there", file=path) from None
    except OSError as exc:
        raise SocleError(f"cannot write: {exc.strerror or exc}", file=path) from None
    finally:
        if temp is not None:
            Path(temp).unlink(missing_ok=True)
    return target
