"""The one door to storage for reading logs: TensorBoard's file layer.

`tensorboard.compat.tf.io.gfile` is real TensorFlow's gfile when TensorFlow is
installed and TensorBoard's stub otherwise (local paths, ``s3://`` through
boto3 and every scheme fsspec knows).  A scheme that the installed TensorFlow
does not know goes to the stub even then: TensorFlow dropped ``s3://`` from
its core in 2.6 (tensorflow-io brings it back), so without this an ``s3://``
logdir would work only where TensorFlow is absent.  Paths are strings; remote paths keep
their ``scheme://`` prefix, so joins and containment checks are done on
POSIX-style paths and never through ``os.path.realpath`` (which mangles
``gs://bucket`` into a local path).
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
from typing import Iterator, Tuple


def gfile(path: str = ""):
    """TensorBoard's file layer for ``path`` (imported lazily: real TF is slow to import).

    Real TensorFlow's gfile when TensorFlow is installed and registers the
    scheme of ``path``; otherwise TensorBoard's stub, which reaches ``s3://``
    through boto3 (endpoint from ``S3_ENDPOINT``, credentials and region the
    way boto3 finds them) and other schemes through fsspec.
    """
    from tensorboard.compat import tf

    g = tf.io.gfile
    registered = getattr(g, "get_registered_schemes", None)  # real TensorFlow only
    if registered is not None and is_remote(path) and path.split("://", 1)[0] not in registered():
        from tensorboard.compat.tensorflow_stub.io import gfile as stub

        return stub
    return g


def is_remote(path: str) -> bool:
    """True for ``scheme://...`` paths (object stores, memory://, ram://)."""
    return "://" in path


def _split_scheme(path: str) -> Tuple[str, str]:
    if is_remote(path):
        scheme, rest = path.split("://", 1)
        return scheme + "://", rest
    return "", path


def join(base: str, *parts: str) -> str:
    if is_remote(base):
        return posixpath.join(base, *parts)
    return os.path.join(base, *parts)


def dirname(path: str) -> str:
    scheme, rest = _split_scheme(path)
    if scheme:
        return scheme + posixpath.dirname(rest)
    return os.path.dirname(path)


def normalize(path: str) -> str:
    """Absolute, symlink-free form of a local path; collapsed ``..`` for remote ones."""
    scheme, rest = _split_scheme(path)
    if scheme:
        return scheme + posixpath.normpath(rest)
    return os.path.realpath(os.path.expanduser(path))


def relpath(path: str, start: str) -> str:
    """``path`` relative to ``start``, with ``/`` separators; "." when equal."""
    p, s = normalize(path), normalize(start)
    if is_remote(p):
        rel = posixpath.relpath(_split_scheme(p)[1], _split_scheme(s)[1])
    else:
        rel = os.path.relpath(p, s).replace(os.sep, "/")
    return rel


def is_within(path: str, root: str) -> bool:
    """Whether ``path`` (after resolving ``..`` and, locally, symlinks) lies inside ``root``."""
    p, r = normalize(path), normalize(root)
    if is_remote(p) != is_remote(r):
        return False
    if is_remote(p):
        if _split_scheme(p)[0] != _split_scheme(r)[0]:
            return False
        p_rest, r_rest = _split_scheme(p)[1], _split_scheme(r)[1]
        return p_rest == r_rest or p_rest.startswith(r_rest.rstrip("/") + "/")
    try:
        return os.path.commonpath([p, r]) == r
    except ValueError:
        return False


def resolve_asset(asset: str, config_dir: str, logdir: str) -> str:
    """Resolve an asset path of a config file, refusing any outside the logdir.

    Relative paths are taken relative to the directory of the config file, as
    the stock Projector does.  Raises ValueError naming the asset when it
    resolves outside ``logdir``.
    """
    if is_remote(asset) or os.path.isabs(os.path.expanduser(asset)):
        candidate = asset if is_remote(asset) else os.path.expanduser(asset)
    else:
        candidate = join(config_dir, asset)
    candidate = normalize(candidate)
    if not is_within(candidate, logdir):
        raise ValueError('path "%s" resolves outside the log directory' % asset)
    return candidate


# Local paths go straight to the OS: importing TensorFlow (what the file layer
# does when it is installed) costs seconds the CLI should not pay.


# Errors of a remote file layer (a missing bucket, refused credentials, no
# route to the endpoint) come from these packages; they become an OSError that
# names the path, which the CLI and the server report in one line.
_STORAGE_ERROR_MODULES = ("botocore.", "boto3.", "s3transfer.", "tensorflow.", "tensorboard.compat.",
                          "fsspec.", "s3fs.", "gcsfs.", "aiohttp.")


@contextlib.contextmanager
def _remote_errors(path: str):
    try:
        yield
    except OSError:
        raise
    except Exception as e:
        if not type(e).__module__.startswith(_STORAGE_ERROR_MODULES):
            raise
        text = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise OSError(errno.EIO, text, path) from None


def exists(path: str) -> bool:
    if not is_remote(path):
        return os.path.exists(path)
    with _remote_errors(path):
        return gfile(path).exists(path)


def isdir(path: str) -> bool:
    if not is_remote(path):
        return os.path.isdir(path)
    with _remote_errors(path):
        return gfile(path).isdir(path)


def listdir(path: str):
    if not is_remote(path):
        return os.listdir(path)
    with _remote_errors(path):
        return gfile(path).listdir(path)


def walk(top: str) -> Iterator[Tuple[str, list, list]]:
    if not is_remote(top):
        return os.walk(top)
    return _walk_remote(top)


def _walk_remote(top: str):
    with _remote_errors(top):
        yield from gfile(top).walk(top)


def signature(path: str):
    """A cheap change marker for caching: (size, mtime) when the layer tells both."""
    try:
        if not is_remote(path):
            st = os.stat(path)
            return (st.st_size, st.st_mtime_ns)
        st = gfile(path).stat(path)
    except Exception:  # a vanished file reads as changed
        return None
    return (getattr(st, "length", None), getattr(st, "mtime_nsec", None))


def read_bytes(path: str) -> bytes:
    if not is_remote(path):
        with open(path, "rb") as f:
            return f.read()
    with _remote_errors(path), gfile(path).GFile(path, "rb") as f:
        return f.read()


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")


def write_bytes(path: str, data: bytes) -> None:
    """Write a whole file; local files go through a temp name and rename."""
    if not is_remote(path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        tmp = "%s.tmp-%d" % (path, os.getpid())
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return
    g = gfile(path)
    parent = dirname(path)
    with _remote_errors(path):
        if not g.exists(parent):
            g.makedirs(parent)
        with g.GFile(path, "wb") as f:
            f.write(data)


def makedirs(path: str) -> None:
    if not is_remote(path):
        os.makedirs(path, exist_ok=True)
    else:
        with _remote_errors(path):
            gfile(path).makedirs(path)
