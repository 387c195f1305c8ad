"""The TensorBoard plugin: a table of routes and thin handlers.

Each handler parses the request, calls the modules that do the work (logdir/
for storage, sessions for live layouts, active/ for suggestions) and answers.
Errors become JSON ``{"error": "..."}`` with a 4xx status, never a traceback;
see docs/HTTP_API.md for every route.
"""

from __future__ import annotations

import getpass
import json
import logging
import mimetypes
import os
import threading

import numpy as np
from werkzeug import wrappers

from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin

from .logdir.catalog import Catalog, UnknownEmbedding
from .logdir.source import PLUGIN_NAME, SourceError

logger = logging.getLogger(__name__)

STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
WRITE_HEADER = "X-Requested-With"
WRITE_HEADER_VALUE = "tensorboard-al"
MAX_BODY_BYTES = 8 * 1024 * 1024


class HTTPError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def _respond_json(request, obj, code=200):
    return http_util.Respond(request, json.dumps(obj, allow_nan=False), "application/json", code=code)


def _route(handler):
    """Wrap a handler: JSON errors with the right status, and a logged traceback for bugs only."""

    @wrappers.Request.application
    def app(request):
        try:
            return handler(request)
        except HTTPError as e:
            return _respond_json(request, {"error": str(e)}, e.code)
        except UnknownEmbedding as e:
            return _respond_json(request, {"error": str(e)}, 404)
        except SourceError as e:
            return _respond_json(request, {"error": str(e)}, 422)
        except Exception as e:  # a bug: keep the server up, say what failed
            logger.exception("%s failed", request.path)
            return _respond_json(request, {"error": "internal error in %s: %s" % (request.path, e)}, 500)

    return app


def _arg(request, name, *, required=True):
    value = request.args.get(name)
    if value is None and required:
        raise HTTPError(400, 'query parameter "%s" is required' % name)
    return value


def _int_arg(request, name, *, minimum=0):
    raw = _arg(request, name)
    try:
        value = int(raw)
    except ValueError:
        raise HTTPError(400, 'query parameter "%s" must be an integer, got "%s"' % (name, raw))
    if value < minimum:
        raise HTTPError(400, 'query parameter "%s" must be >= %d, got %d' % (name, minimum, value))
    return value


def _json_body(request) -> dict:
    """The body of a write request, after the checks every write route needs."""
    if request.method != "POST":
        raise HTTPError(405, "%s accepts POST only" % request.path)
    if request.headers.get(WRITE_HEADER) != WRITE_HEADER_VALUE:
        raise HTTPError(403, "write requests must carry the header %s: %s" % (WRITE_HEADER, WRITE_HEADER_VALUE))
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise HTTPError(413, "request body of %d bytes exceeds the limit of %d" % (length, MAX_BODY_BYTES))
    data = request.stream.read(MAX_BODY_BYTES + 1)
    if len(data) > MAX_BODY_BYTES:
        raise HTTPError(413, "request body exceeds the limit of %d bytes" % MAX_BODY_BYTES)
    try:
        body = json.loads(data.decode("utf-8") or "null")
    except (UnicodeDecodeError, ValueError) as e:
        raise HTTPError(400, "request body is not valid JSON: %s" % e)
    if not isinstance(body, dict):
        raise HTTPError(400, "request body must be a JSON object")
    return body


def _field(body, name, kind, *, required=True, default=None):
    if name not in body or body[name] is None:
        if required:
            raise HTTPError(400, 'field "%s" is required' % name)
        return default
    value = body[name]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise HTTPError(400, 'field "%s" must be an integer' % name)
    if kind is str and not isinstance(value, str):
        raise HTTPError(400, 'field "%s" must be a string' % name)
    if kind is list and not isinstance(value, list):
        raise HTTPError(400, 'field "%s" must be a list' % name)
    return value


class ActiveLabelingPlugin(base_plugin.TBPlugin):
    plugin_name = PLUGIN_NAME

    def __init__(self, context, *, default_author=None):
        self._logdir = context.logdir
        self._flags = context.flags
        self.catalog = Catalog(context.logdir or None)
        self._default_author = default_author or _os_user()
        self._stores = {}
        self._stores_lock = threading.Lock()
        self._sessions = None
        self._sessions_lock = threading.Lock()
        if self._logdir:
            self.catalog.scan_in_background()

    # -- TBPlugin --------------------------------------------------------------------

    def is_active(self):
        return self.catalog.has_embeddings()

    def frontend_metadata(self):
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name="Active Labeling",
                                            disable_reload=True)

    def get_plugin_apps(self):
        routes = {
            "/index.js": self._serve_index,
            "/static/*": self._serve_static,
            "/embeddings": self._serve_embeddings,
            "/tensor": self._serve_tensor,
            "/metadata": self._serve_metadata,
            "/sprite": self._serve_sprite,
        }
        routes.update(self._label_routes())
        routes.update(self._layout_routes())
        return {path: _route(handler) for path, handler in routes.items()}

    # -- static ----------------------------------------------------------------------

    def _serve_index(self, request):
        return self._static_file(request, "index.js")

    def _serve_static(self, request):
        name = request.path.rsplit("/static/", 1)[-1]
        return self._static_file(request, name)

    def _static_file(self, request, name):
        # Only plain names of files shipped in static/: no path from the request reaches further.
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise HTTPError(404, "no static file %s" % name)
        path = os.path.join(STATIC_DIR, name)
        if not os.path.isfile(path):
            raise HTTPError(404, "no static file %s (was the frontend built? run scripts/install.sh)" % name)
        with open(path, "rb") as f:
            content = f.read()
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if name.endswith((".js", ".mjs")):
            mime = "application/javascript"
        return http_util.Respond(request, content, mime)

    # -- discovery and data ----------------------------------------------------------

    def _serve_embeddings(self, request):
        max_age = 0.0 if request.args.get("refresh") else 2.0
        sources = self.catalog.list(max_age_s=max_age)
        return _respond_json(request, {
            "logdir": self._logdir,
            "scanning": self.catalog.scanning,
            "embeddings": [s.to_json() for s in sources],
        })

    def _source(self, request, *, require_ok=True):
        source = self.catalog.get(_arg(request, "run"), _arg(request, "embedding"))
        if require_ok and not source.ok:
            raise SourceError("embedding %s of run %s cannot be opened: %s"
                              % (source.name, source.run, "; ".join(source.problems)))
        return source

    def _serve_tensor(self, request):
        source = self._source(request)
        tensor = self.catalog.tensor(source)
        return http_util.Respond(request, tensor.astype("<f4", copy=False).tobytes(), "application/octet-stream",
                                 headers=[("X-Rows", str(tensor.shape[0])), ("X-Dims", str(tensor.shape[1]))])

    def _serve_metadata(self, request):
        source = self._source(request)
        if source.load_metadata is None:
            _raise_part_problem(source, "metadata ignored")
            return _respond_json(request, {"columns": [], "data": []})
        columns, data = source.load_metadata()
        return _respond_json(request, {"columns": columns, "data": data})

    def _serve_sprite(self, request):
        source = self._source(request)
        if source.sprite is None:
            _raise_part_problem(source, "sprite ignored")
            raise HTTPError(404, "embedding %s of run %s has no sprite images" % (source.name, source.run))
        page = _int_arg(request, "page")
        if page >= source.sprite.pages:
            raise HTTPError(400, "page %d does not exist; the sprite has %d page(s)" % (page, source.sprite.pages))
        data = source.load_sprite_page(page)
        return http_util.Respond(request, data, "image/png", expires=3600)

    # -- labels ----------------------------------------------------------------------

    def _label_routes(self):
        return {}

    def _layout_routes(self):
        return {}


def _raise_part_problem(source, prefix):
    """A configured but broken part (metadata, sprite) answers with its problem, not as absent."""
    for problem in source.problems:
        if problem.startswith(prefix):
            raise SourceError(problem)


def _os_user():
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


class ActiveLabelingLoader(base_plugin.TBLoader):
    """Adds the ``--al_user`` flag (author recorded with every label) and builds the plugin."""

    def define_flags(self, parser):
        group = parser.add_argument_group("active_labeling")
        group.add_argument("--al_user", metavar="NAME", type=str, default="",
                           help="Active Labeling: the author recorded with labels written through this "
                                "server (default: the OS user; a request header X-AL-User overrides it)")

    def load(self, context):
        author = getattr(context.flags, "al_user", "") if context.flags else ""
        return ActiveLabelingPlugin(context, default_author=author or None)
