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
import stat
import threading
from typing import IO, Iterator, Optional, Tuple


class SourceError(ValueError):
    """A file of the log directory is unusable; the message names the file and what is wrong."""


# Size limits, one per kind of file.  A file beyond its limit is refused with a
# SourceError that names the file and the limit; it is never read in full.
MiB = 1 << 20
#: projector_config.pbtxt, manifest.json, a checkpoint state file, published.json.
MAX_CONFIG_BYTES = 4 * MiB
#: A metadata TSV (10^6 rows of a few columns take about 50 MiB).
MAX_METADATA_BYTES = 1024 * MiB
#: A tensor as tab-separated text (10^6 x 128 takes about 1.2 GiB).
MAX_TEXT_TENSOR_BYTES = 2048 * MiB
#: A binary float32 tensor (it must also be exactly rows x dims x 4 bytes).
MAX_TENSOR_BYTES = 16384 * MiB
#: A sprite image file, and a TensorFlow checkpoint's .index file.
MAX_IMAGE_BYTES = 256 * MiB
MAX_CHECKPOINT_INDEX_BYTES = 256 * MiB
#: One data file of a TensorFlow checkpoint (TensorFlow reads only the variable it is asked for).
MAX_CHECKPOINT_DATA_BYTES = 64 * 1024 * MiB
#: Width x height of a sprite image the server decodes (a 12,000 x 12,000 px
#: sprite fits).  Pillow warns above 89 Mpx and refuses above 179 Mpx by
#: default; this limit is checked from the header, before anything is decoded.
MAX_IMAGE_PIXELS = 160_000_000


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


def local_path(path: str) -> Optional[str]:
    """The operating system's path for a local path or a ``file://`` URL; None for other schemes."""
    if path.startswith("file://"):
        return path[len("file://"):]
    return None if is_remote(path) else path


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


def absolute(path: str) -> str:
    """A local path made absolute (``~`` expanded, symlinks kept); remote paths unchanged."""
    return path if is_remote(path) else os.path.abspath(os.path.expanduser(path))


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
    g = gfile(path)
    bucket, _, key = path[len("s3://"):].partition("/")
    if path.startswith("s3://") and not key.strip("/") and not hasattr(g, "get_registered_schemes"):
        # The stub splits at the first "/" after the bucket and lists "<key>/".
        raise OSError(errno.EINVAL, "TensorBoard's S3 layer cannot list the root of a bucket; put the logs in "
                      "a folder of it and give that folder (like s3://%s/logs)" % bucket, path)
    with _remote_errors(path):
        return g.isdir(path)


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
    """A cheap change marker for caching: (size, mtime), or (size, version tag) of an object."""
    try:
        if not is_remote(path):
            st = os.stat(path)
            return (st.st_size, st.st_mtime_ns)
        st = gfile(path).stat(path)
        marker = getattr(st, "mtime_nsec", None)
        if marker is None:
            # TensorBoard's stub tells the size only: an object rewritten with
            # as many bytes (a tensor of the same shape) would look unchanged.
            marker = _object_version(path)
    except Exception:  # a vanished file reads as changed
        return None
    return (getattr(st, "length", None), marker)


_S3_CLIENTS: dict = {}
_S3_CLIENTS_LOCK = threading.Lock()


def _s3_client():
    """A boto3 S3 client for where TensorBoard's stub S3 layer points (S3_ENDPOINT), with boto3's credentials."""
    endpoint = os.environ.get("S3_ENDPOINT") or None
    with _S3_CLIENTS_LOCK:  # creating boto3 clients is not thread-safe
        client = _S3_CLIENTS.get(endpoint)
        if client is None:
            import boto3

            client = _S3_CLIENTS[endpoint] = boto3.session.Session().client("s3", endpoint_url=endpoint)
    return client


def remove(path: str) -> None:
    """Delete one file, also where the file layer cannot (TensorBoard's stub: boto3 for s3://, else fsspec)."""
    if not is_remote(path):
        os.remove(path)
        return
    g = gfile(path)
    with _remote_errors(path):
        if hasattr(g, "remove"):
            g.remove(path)
        elif path.startswith("s3://"):
            bucket, _, key = path[len("s3://"):].partition("/")
            _s3_client().delete_object(Bucket=bucket, Key=key)
        else:
            import fsspec

            filesystem, inner = fsspec.core.url_to_fs(path)
            filesystem.rm(inner)


def _object_version(path: str):
    """The ETag (or a modification time) of a remote object, for layers whose stat has no time."""
    if path.startswith("s3://"):
        bucket, _, key = path[len("s3://"):].partition("/")
        head = _s3_client().head_object(Bucket=bucket, Key=key)
        return head.get("ETag") or str(head.get("LastModified"))
    import fsspec

    filesystem, inner = fsspec.core.url_to_fs(path)
    info = filesystem.info(inner)
    for key in ("ETag", "etag", "md5Hash", "generation", "mtime", "LastModified", "last_modified",
                "updated", "created"):
        if info.get(key) is not None:
            return str(info[key])
    return None


def size_text(n: int) -> str:
    """A size limit in words: "512 MiB", or "4000 bytes"."""
    return "%d MiB" % (n // MiB) if n >= MiB and n % MiB == 0 else "%d bytes" % n


def display(path: str, root: str) -> str:
    """``path`` as the user wrote it, relative to ``root`` when it lies there lexically (symlinks not resolved)."""
    if is_remote(path) or is_remote(root):
        return relpath(path, root) if is_within(path, root) else path
    p, r = os.path.abspath(path), os.path.abspath(root)
    try:
        if os.path.commonpath([p, r]) == r:
            return os.path.relpath(p, r).replace(os.sep, "/")
    except ValueError:
        pass
    return path


def file_kind(mode: int) -> str:
    """What a stat mode names, in words: "a regular file", "a directory", "a FIFO"..."""
    for test, name in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _named(path: str, root: str, what: str) -> str:
    """How an error names a file: its kind (``what``) and its path as the user wrote it."""
    return (what + " " if what else "") + display(path, root)


def check_inside(path: str, root: str, what: str = "", outside: str = "the log directory") -> str:
    """The resolved form of ``path`` (symlinks followed); SourceError unless it lies inside ``root``.

    For a local path every existing component is resolved, so a folder that
    is a symlink to elsewhere is caught even when the file below it does not
    exist yet.  Remote paths have no symlinks; ``..`` is collapsed.
    """
    resolved = normalize(path)
    if not is_within(resolved, root):
        raise SourceError("%s%s resolves outside %s" % (what and what + " ", display(path, root), outside))
    return resolved


def open_file(path: str, root: str, limit: int, what: str = "") -> Tuple[IO[bytes], int]:
    """Open ``path`` for reading after checking it: inside ``root``, a regular file, at most ``limit`` bytes.

    Returns the open binary file and its size.  Nothing blocks: a FIFO is
    opened non-blocking and refused, a device or a symlink out of the log
    directory is refused before it is opened.  Every refusal is a
    SourceError naming the file (as the config or manifest wrote it).
    """
    name = _named(path, root, what)
    if is_remote(path):
        check_inside(path, root, what)
        g = gfile(path)
        try:
            if g.isdir(path):
                raise SourceError("%s is not a regular file (a directory)" % name)
            size = getattr(g.stat(path), "length", None)
        except SourceError:
            raise
        except Exception as e:
            raise SourceError("%s cannot be read: %s" % (name, str(e).strip().splitlines()[0] if str(e).strip()
                                                          else type(e).__name__)) from None
        if size is not None and size > limit:
            raise SourceError("%s has %d bytes, more than the limit of %s" % (name, size, size_text(limit)))
        with _remote_errors(path):
            return g.GFile(path, "rb"), (size if size is not None else -1)
    real = check_inside(path, root, what)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(real, flags)
    except OSError as e:
        if e.errno == errno.ELOOP:  # swapped for a symlink since it was resolved
            raise SourceError("%s changed into a symbolic link while being opened" % name) from None
        raise SourceError("%s cannot be read: %s" % (name, e.strerror or e)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SourceError("%s is not a regular file (%s)" % (name, file_kind(st.st_mode)))
        if st.st_size > limit:
            raise SourceError("%s has %d bytes, more than the limit of %s" % (name, st.st_size, size_text(limit)))
        return os.fdopen(fd, "rb"), st.st_size
    except BaseException:
        os.close(fd)
        raise


def check_file(path: str, root: str, limit: int, what: str = "") -> int:
    """Size of ``path`` after the checks of :func:`open_file` (which it opens and closes at once)."""
    f, size = open_file(path, root, limit, what)
    f.close()
    return size


def read_bytes(path: str, root: str, limit: int, what: str = "") -> bytes:
    """The whole of ``path``: inside ``root``, a regular file, at most ``limit`` bytes (never more are read)."""
    f, size = open_file(path, root, limit, what)
    with (_remote_errors(path) if is_remote(path) else contextlib.nullcontext()), f:
        # Asked for the size the file has (not the limit: read(n) allocates n bytes
        # first, 1 GiB for every metadata file and 256 MiB for every sprite page),
        # then for the rest up to the limit only if it grew meanwhile.
        data = f.read(min(size, limit) + 1) if size >= 0 else b""
        if size < 0 or len(data) > size:
            data += f.read(limit + 1 - len(data))
    if len(data) > limit:  # it grew since it was checked
        raise SourceError("%s has more than the limit of %s" % (_named(path, root, what), size_text(limit)))
    return data


def read_text(path: str, root: str, limit: int, what: str = "") -> str:
    data = read_bytes(path, root, limit, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SourceError("%s is not UTF-8 text" % _named(path, root, what)) from None


def check_dir(path: str, root: str, what: str = "", outside: str = "the log directory") -> None:
    """SourceError unless ``path`` and every folder above it up to ``root`` resolve inside ``root``.

    For folders this plugin writes into (the label store's): a folder that is
    a symlink, or a parent that is one, leading out of the log directory is
    refused before anything is created, written or deleted there.
    """
    def lexical(p: str) -> str:
        scheme, rest = _split_scheme(p)
        return scheme + posixpath.normpath(rest) if scheme else os.path.abspath(p)

    stop, current = lexical(root), lexical(path)
    check_inside(current, root, what, outside)
    if not is_within_lexically(current, stop):
        return
    while current != stop:
        check_inside(current, root, what, outside)
        parent = dirname(current)
        if parent == current:
            return
        current = parent


def is_within_lexically(path: str, root: str) -> bool:
    """Whether ``path`` lies inside ``root`` as written (no symlink is resolved)."""
    scheme_p, p = _split_scheme(path)
    scheme_r, r = _split_scheme(root)
    if scheme_p != scheme_r:
        return False
    mod = posixpath if scheme_p else os.path
    p, r = mod.normpath(p), mod.normpath(r)
    return p == r or p.startswith(r.rstrip("/" if scheme_p else os.sep) + ("/" if scheme_p else os.sep))


def temp_path(path: str) -> str:
    """A new temporary name beside local ``path``, unique to this call (not only to this process).

    ``<path>.tmp-<pid>-<8 random hex digits>``: two threads replacing one file
    never share a temp file, and a link planted under a guessable name is
    never the one written.  The label store deletes stray ``.tmp-`` files of
    killed writers by this pattern.
    """
    return "%s.tmp-%d-%s" % (path, os.getpid(), os.urandom(4).hex())


def write_atomic(path: str, data: bytes, *, durable: bool = True, mode: int = 0o666) -> None:
    """Replace the local file ``path`` by ``data`` all at once: temp file, then ``os.replace``.

    The one atomic write of ``logdir/`` (:func:`pending_file` is the same
    write in steps, for data written in pieces or replaced later).  The temp
    file (:func:`temp_path`) is created exclusively and never through a
    symlink, so nothing planted there is written through; the rename replaces
    a link at ``path`` itself, never its target.  Readers see the old bytes or
    the new ones, never a part.  ``durable``: fsync the data before the rename
    (so it survives a power loss, not only a killed process).  ``mode``:
    permission bits of a new file, before the umask.  On any error the temp
    file is removed.
    """
    with pending_file(path, durable=durable, mode=mode) as pending:
        pending.write(data)
        pending.replace()


class PendingFile:
    """A temp file beside ``path`` that replaces it only when told (see :func:`pending_file`)."""

    def __init__(self, path: str, durable: bool, mode: int):
        self.path = path
        self.tmp = temp_path(path)
        self.durable = durable
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        # Fails on anything already there, which is then not ours to remove.
        self._file = os.fdopen(os.open(self.tmp, flags, mode), "wb")
        self.replaced = False

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def finish(self) -> None:
        """Flush, fsync when durable, close; the slow part, which :meth:`replace` then need not repeat."""
        if not self._file.closed:
            if self.durable:
                self._file.flush()
                os.fsync(self._file.fileno())
            self._file.close()

    def replace(self) -> None:
        """Finish, then rename the temp file over ``path`` (atomic)."""
        self.finish()
        os.replace(self.tmp, self.path)
        self.replaced = True


@contextlib.contextmanager
def pending_file(path: str, *, durable: bool = True, mode: int = 0o666):
    """:func:`write_atomic` in steps: write pieces, :meth:`~PendingFile.finish`, then
    :meth:`~PendingFile.replace` (e.g. under a lock, after a check).

    Leaving the block without ``replace()`` (or on any error) removes the
    temp file and leaves ``path`` as it was.
    """
    pending = PendingFile(path, durable, mode)
    try:
        yield pending
    finally:
        if not pending.replaced:
            with contextlib.suppress(OSError):
                pending._file.close()
            with contextlib.suppress(OSError):
                os.remove(pending.tmp)


def write_bytes(path: str, data: bytes) -> None:
    """Write a whole file, making its folder: locally with :func:`write_atomic` (fsynced), else one gfile write."""
    if not is_remote(path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        write_atomic(path, data)
        return
    g = gfile(path)
    parent = dirname(path)
    with _remote_errors(path):
        if not g.exists(parent):
            g.makedirs(parent)
        with g.GFile(path, "wb") as f:
            # TensorBoard's gfile without TensorFlow takes bytes or str only (not a memoryview)
            f.write(data if isinstance(data, bytes) else bytes(data))


def makedirs(path: str) -> None:
    if not is_remote(path):
        os.makedirs(path, exist_ok=True)
    else:
        with _remote_errors(path):
            gfile(path).makedirs(path)
