"""Start a real `tensorboard` process on a free localhost port, for tests and benchmarks.

    with TensorBoard(logdir) as tb:
        tb.get_json("/data/plugin/active_labeling/embeddings")

``without_tensorflow=True`` hides TensorFlow from the server (a shim on
PYTHONPATH makes ``import tensorflow`` fail), so the same suite checks the
plugin both with TensorFlow and with TensorBoard's stub file layer.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Optional

PLUGIN = "/data/plugin/active_labeling"
_HERE = os.path.dirname(os.path.abspath(__file__))
NO_TF_SHIM = os.path.join(_HERE, "no_tensorflow")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response:
    def __init__(self, status: int, headers, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body.decode("utf-8"))


class ChildServer:
    """A server in a child process (``self.proc``) logging to a temp file (``self._log``)."""

    proc: Optional[subprocess.Popen] = None
    _log = None

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log:
            self._log.close()

    def log(self) -> str:
        try:
            with open(self._log.name, "r", errors="replace") as f:
                return f.read()[-5000:]
        except Exception:
            return ""


class TensorBoard(ChildServer):
    def __init__(self, logdir: str, *, without_tensorflow: bool = False, extra_args=(), env=None,
                 timeout_s: float = 90.0, cwd=None):
        self.logdir = str(logdir)  # relative to ``cwd`` when that is given
        self.cwd = cwd
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.without_tensorflow = without_tensorflow
        self.extra_args = list(extra_args)
        self.env = env
        self.timeout_s = timeout_s
        self.proc: Optional[subprocess.Popen] = None
        self._log = None

    def __enter__(self) -> "TensorBoard":
        env = dict(os.environ)
        env.update(self.env or {})
        env["TF_CPP_MIN_LOG_LEVEL"] = "2"
        if self.without_tensorflow:
            env["PYTHONPATH"] = NO_TF_SHIM + os.pathsep + env.get("PYTHONPATH", "")
        self._log = tempfile.NamedTemporaryFile(prefix="tensorboard-", suffix=".log", delete=False)
        cmd = [sys.executable, "-m", "tensorboard.main", "--logdir", self.logdir, "--host", "127.0.0.1",
               "--port", str(self.port), "--load_fast", "false", "--reload_interval", "1"] + self.extra_args
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=self.cwd)
        deadline = time.time() + self.timeout_s
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("tensorboard exited with %s:\n%s" % (self.proc.returncode, self.log()))
            try:
                if self.get("/data/plugins_listing").status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.3)
        self.__exit__(None, None, None)
        raise RuntimeError("tensorboard did not answer within %.0f s:\n%s" % (self.timeout_s, self.log()))

    def request(self, path: str, *, method: str = "GET", body: Optional[bytes] = None, headers=None,
                timeout: float = 60.0) -> Response:
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return Response(r.status, r.headers, r.read())
        except urllib.error.HTTPError as e:
            return Response(e.code, e.headers, e.read())

    def get(self, path: str, **kw) -> Response:
        return self.request(path, **kw)

    def get_json(self, path: str):
        r = self.get(path)
        assert r.status == 200, (path, r.status, r.body[:500])
        return r.json()

    def post(self, path: str, obj, *, header: bool = True, headers=None) -> Response:
        h = {"Content-Type": "application/json"}
        if header:
            h["X-Requested-With"] = "tensorboard-al"
        h.update(headers or {})
        return self.request(path, method="POST", body=json.dumps(obj).encode("utf-8"), headers=h)

    def wait_for_embeddings(self, timeout_s: float = 60.0):
        """The embedding listing once the first background scan has finished."""
        deadline = time.time() + timeout_s
        while True:
            listing = self.get_json(PLUGIN + "/embeddings")
            if not listing["scanning"] or time.time() > deadline:
                return listing
            time.sleep(0.2)
