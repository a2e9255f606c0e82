"""Atomic file writes: every file the library writes goes through `atomic_open`.

The content goes to a temporary file in the target's folder (`.NAME.PID-HOST.XXXXXXXX.tmp`,
named after its writer), is flushed to disk, and only then renamed over the target, so a crash
or an error midway leaves the old file (or none), never a half-written one. An error removes the
temporary file; a killed process cannot, so whoever opens the folder again calls
`remove_temporaries`, which removes those whose writer is no longer running. A write that fails
for want of space or permission raises `WriteError`: one line naming the file and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import signal
import socket
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

TEMPORARY_SUFFIX = ".tmp"
# `tempfile.mkstemp`'s names with our prefix and suffix: ".NAME.PID-HOST." + 8 random characters
# + ".tmp", HOST a digest of the writer's host name; names from before (no PID-HOST) match too.
_TEMPORARY_NAME = re.compile(
    r"\..+?(?:\.(?P<pid>[0-9]+)-(?P<host>[0-9a-f]{8}))?\.[a-z0-9_]{8}\.tmp"
)
_PROBE_PREFIX = ".mmlib-probe."
_ADVICE = {
    errno.ENOSPC: "the disk is full; free some space",
    errno.EDQUOT: "the disk quota is used up; free some space",
    errno.EFBIG: "the file is over this system's file-size limit (ulimit -f); raise it",
    errno.EROFS: "the file system is read-only; use a writable folder",
}
_WRITE_FAILURES = {*_ADVICE, errno.EACCES, errno.EPERM, errno.EIO}
FAULT_VARIABLE = "MMLIB_FAULT_AT"
QUOTED_LIMIT = 60  # characters of a user's text (a prompt, a caption) an error line quotes


class WriteError(OSError):
    """A file or folder cannot be written (full disk, size limit, read-only or not permitted);
    the message names the path and what to do."""


class OutputPathError(ValueError):
    """An output path a command cannot use: a folder where a file is wanted, a file in the way of
    a folder, or an extension the command cannot write; the message names it and what to do."""


def write_error(path: Path, error: OSError, remedy: str = "") -> WriteError:
    """`error` as a `WriteError`: the path, the system's reason, and what to do about it."""
    advice = _ADVICE.get(error.errno or 0, "make the folder writable or use another one")
    reason = error.strerror or str(error)
    return WriteError(f"{path}: cannot write ({reason}): {advice}{remedy}")


def quoted(text: str, limit: int = QUOTED_LIMIT) -> str:
    """`text` quoted for a one-line error message: past `limit` characters, its start and its
    length, so that a megabyte of caption gives a readable line."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file to write `path`'s new content into; it replaces `path` when the block ends.

    If the block raises, `path` is left as it was and the temporary file is removed.
    The new file gets the mode `open` would give it (0o666 less the umask), not mkstemp's 0o600.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.{_writer()}.", suffix=TEMPORARY_SUFFIX
        )
    except OSError as error:
        raise write_error(path, error) from error
    try:
        os.fchmod(descriptor, _creation_mode())
        with os.fdopen(descriptor, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        fault_point(f"before_rename:{path.name}")
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno in _WRITE_FAILURES:
            raise write_error(
                path, error, f"; the previous {path.name}, if any, is unchanged"
            ) from error
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to `path` atomically (see `atomic_open`)."""
    with atomic_open(path) as handle:
        handle.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` to `path` as UTF-8, atomically (see `atomic_open`)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def remove_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files that killed writes left in `folder` (names `atomic_open` or
    `check_writable` made whose writer has ended; nothing else), and return them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _left_by_ended_writer(p.name) and p.is_file()]
    for path in found:
        path.unlink(missing_ok=True)
    return found


def check_writable(folder: str | os.PathLike[str], remedy: str) -> None:
    """Make `folder` if needed, then create, write and remove a probe file in it, so that an
    unwritable folder fails now, not after hours of work. (As root, `os.access` and the mode
    bits say yes to a read-only mount.) A failure raises `WriteError`, ending with `remedy`."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        descriptor, probe = tempfile.mkstemp(
            dir=folder, prefix=f"{_PROBE_PREFIX}{_writer()}.", suffix=TEMPORARY_SUFFIX
        )
        try:
            os.write(descriptor, b"probe")
        finally:
            os.close(descriptor)
            os.unlink(probe)
    except OSError as error:
        raise write_error(folder, error, f", or {remedy}") from error


def check_output_file(path: str | os.PathLike[str], option: str, extensions: Sequence[str]) -> Path:
    """Before any work: refuse an output file `path` (given as `option`, e.g. "--out") that is a
    folder, whose extension is not one of `extensions` (".png", ...), or that lies under a file;
    then make its folder and check that it can be written (`check_writable`)."""
    path = Path(path)
    if path.is_dir():
        example = path / f"x{extensions[0]}"
        raise OutputPathError(f"{option} {path}: a folder; give a file name in it, e.g. {example}")
    if path.suffix.lower() not in extensions:
        found = f"unknown file extension {path.suffix!r}" if path.suffix else "no file extension"
        raise OutputPathError(
            f"{option} {path}: {found}; end the name with one of {', '.join(extensions)}"
        )
    _refuse_file_in_the_way(path.parent, path, option)
    check_writable(path.parent, f"choose another {option}")
    return path


def check_output_folder(path: str | os.PathLike[str], option: str) -> Path:
    """Before any work: refuse an output folder `path` (given as `option`) that is a file or lies
    under one; then make it and check that it can be written (`check_writable`)."""
    path = Path(path)
    _refuse_file_in_the_way(path, path, option)
    check_writable(path, f"choose another {option}")
    return path


def _refuse_file_in_the_way(folder: Path, path: Path, option: str) -> None:
    """Raise `OutputPathError` if `folder` or a folder above it is a file."""
    for parent in (*reversed(folder.parents), folder):
        if parent.exists() and not parent.is_dir():
            raise OutputPathError(
                f"{option} {path}: {parent} is a file, not a folder; choose another path"
            )


def fault_point(name: str) -> None:
    """Test only: SIGKILL this process when the environment variable MMLIB_FAULT_AT is `name`.

    The library calls it at the points a crash is most harmful: `step:N` after optimizer step N
    (`mmlib.training`), `before_rename:FILE` when FILE's new content is on disk under its temporary
    name. tests/test_faults.py kills runs there and checks that they resume; unset, it does
    nothing.
    """
    if os.environ.get(FAULT_VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _writer() -> str:
    """PID-HOST: this process's id and a digest of its host's name, for temporary file names."""
    return f"{os.getpid()}-{_host_digest()}"


def _host_digest() -> str:
    """8 hex digits of this machine's host name (any characters it has stay out of file names)."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _left_by_ended_writer(name: str) -> bool:
    """Whether `name` is one of our temporary names whose writer is no longer running.

    A writer on another machine (a shared cache folder) may be alive: its files are kept. Names
    without PID-HOST were made by versions that did not name the writer; they are taken as
    ended, as those versions took every temporary file in a run folder.
    """
    match = _TEMPORARY_NAME.fullmatch(name)
    if match is None:
        return False
    if match["pid"] is None:
        return True
    return match["host"] == _host_digest() and not _process_alive(int(match["pid"]))


def _process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _creation_mode() -> int:
    """0o666 less the process's umask: the mode a new file gets from `open`."""
    umask = os.umask(0o022)  # reading the umask means setting it: put it back at once
    os.umask(umask)
    return 0o666 & ~umask


def read_json(
    path: str | os.PathLike[str], remedy: str, error: type[Exception] = ValueError
) -> Any:
    """The JSON value in `path`. A missing, unreadable, non-UTF-8 or non-JSON file raises
    `error`: one line naming the file and what is wrong, ending with `remedy` (what to do)."""
    path = Path(path)
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: not found; {remedy}") from None
    except OSError as failure:
        raise error(f"{path}: cannot be read ({failure.strerror or failure}); {remedy}") from None
    except UnicodeDecodeError as failure:
        raise error(
            f"{path}: not UTF-8 text (byte {failure.start} is {_first_bad_byte(failure)}), so not "
            f"the JSON file it should be; {remedy}"
        ) from None
    except json.JSONDecodeError as failure:
        raise error(
            f"{path}: not valid JSON (line {failure.lineno}, column {failure.colno}): "
            f"{failure.msg}; {remedy}"
        ) from None


def read_json_object(
    path: str | os.PathLike[str], remedy: str, error: type[Exception] = ValueError
) -> dict[str, Any]:
    """`read_json` of a file that must hold a JSON object (names as keys)."""
    value = read_json(path, remedy, error)
    if not isinstance(value, dict):
        raise error(f"{path}: holds a JSON {_json_kind(value)}, not an object; {remedy}")
    return value


def _json_kind(value: Any) -> str:
    """What JSON calls the type of `value`: object, array, string, number, boolean or null."""
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return kinds.get(type(value), "number")


def _first_bad_byte(failure: UnicodeDecodeError) -> str:
    """The first byte that is not UTF-8, in hex."""
    return f"0x{failure.object[failure.start]:02x}"
