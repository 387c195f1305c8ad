"""A real S3 API server for tests: moto's server mode on 127.0.0.1 and a free port.

    with S3Server() as s3:
        s3.create_bucket("logs-bucket")
        subprocess.run([...], env=s3.env())   # S3_ENDPOINT and credentials for boto3

The server is a child process (``python -m moto.server``), so every client,
the test process, ``tensorboard`` and writer processes alike, talks to it over
HTTP, the way they would talk to S3.  Its state lives in its memory and ends
with it.  Startup and shutdown are bounded in time.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from tests.tbserver import ChildServer, free_port

#: Why S3 tests cannot run here, or None when they can.
MISSING = None
for _module, _package in (("moto.server", "moto[server]"), ("boto3", "boto3"), ("flask", "moto[server]")):
    try:
        _found = importlib.util.find_spec(_module) is not None
    except ImportError:
        _found = False
    if not _found:
        MISSING = "%s is not installed (pip install -e '.[test]')" % _package
        break

REGION = "us-east-1"
ACCESS_KEY = "testing-key"
SECRET_KEY = "testing-secret"


class S3Server(ChildServer):
    def __init__(self, timeout_s: float = 60.0):
        self.port = free_port()
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.timeout_s = timeout_s

    def env(self, base=None) -> dict:
        """Environment for a client process: boto3 (and TensorBoard's stub gfile) reach this server."""
        env = dict(os.environ if base is None else base)
        env.update({
            "S3_ENDPOINT": self.endpoint,  # read by TensorBoard's stub S3 file system
            "AWS_ENDPOINT_URL_S3": self.endpoint,  # read by boto3 itself (and s3fs through it)
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",  # never ask a cloud metadata service for credentials
        })
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            env.pop(name, None)
        env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
        return env

    def __enter__(self) -> "S3Server":
        self._log = tempfile.NamedTemporaryFile(prefix="moto-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + self.timeout_s
        while time.time() < deadline:
            if self.proc.poll() is not None:
                text = self.log()
                self.__exit__(None, None, None)
                raise RuntimeError("moto server exited with %s:\n%s" % (self.proc.returncode, text))
            try:
                with urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=5) as r:
                    if r.status == 200:
                        return self
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        text = self.log()
        self.__exit__(None, None, None)
        raise RuntimeError("moto server did not answer within %.0f s:\n%s" % (self.timeout_s, text))

    def __exit__(self, *exc):
        super().__exit__(*exc)
        if self._log:
            os.unlink(self._log.name)
            self._log = None

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list:
        """Every object key under ``prefix``, sorted."""
        out = []
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            out.extend(o["Key"] for o in page.get("Contents", []))
        return sorted(out)

    def get(self, bucket: str, key: str) -> bytes:
        return self.client().get_object(Bucket=bucket, Key=key)["Body"].read()
