"""The TensorBoard plugin: a table of routes and thin handlers.

Each handler parses the request, calls the embedding's workspace (workspace.py,
which owns its labels, layout and classifier) and answers.
Errors become JSON ``{"error": "..."}`` with a 4xx status, never a traceback;
see docs/HTTP_API.md for every route.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import math
import mimetypes
import os
import re
import socket
import urllib.parse

import numpy as np
from werkzeug import wrappers

from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin

from .logdir.catalog import Catalog, UnknownEmbedding
from .logdir.labels import ConflictError, LabelError, os_user, validate_author
from .logdir.source import PLUGIN_NAME, SourceError
from .wire import POSITION_FORMATS, encode_positions
from .workspace import LABEL_ACTIONS, LABEL_ANSWERS, NoLabels, NoLayout, PartMissing, Workspaces

logger = logging.getLogger(__name__)

STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
WRITE_HEADER = "X-Requested-With"
WRITE_HEADER_VALUE = "tensorboard-al"
MAX_BODY_BYTES = 8 * 1024 * 1024
#: A write body nests no deeper than this (the deepest route needs 3).
MAX_BODY_DEPTH = 32


class HTTPError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def _respond_json(request, obj, code=200):
    return http_util.Respond(request, json.dumps(obj, allow_nan=False), "application/json", code=code)


def _route(handler, hosts: "AllowedHosts"):
    """Wrap a handler: the Host check, JSON errors with the right status, a logged traceback for bugs only."""

    @wrappers.Request.application
    def app(request):
        try:
            hosts.check(request)
            return handler(request)
        except HTTPError as e:
            return _respond_json(request, {"error": str(e)}, e.code)
        except (UnknownEmbedding, NoLayout, PartMissing) as e:
            return _respond_json(request, {"error": str(e)}, 404)
        except SourceError as e:
            return _respond_json(request, {"error": str(e)}, 422)
        except ConflictError as e:  # well formed but cannot apply now (nothing to undo)
            return _respond_json(request, {"error": str(e)}, 409)
        except (LabelError, NoLabels) as e:  # a label the store refuses; an embedding without labels
            return _respond_json(request, {"error": str(e)}, 400)
        except Exception as e:  # a bug: keep the server up, say what failed
            logger.exception("%s failed", request.path)
            return _respond_json(request, {"error": "internal error in %s: %s" % (request.path, e)}, 500)

    return app


class AllowedHosts:
    """Which ``Host`` headers the plugin answers: the defence against DNS rebinding.

    A web page on evil.example whose DNS name is re-pointed at 127.0.0.1 can
    make the browser send it requests to TensorBoard that count as
    same-origin, so the custom write header does not stop it; but they carry
    ``Host: evil.example``.  Allowed: localhost names (``localhost``,
    ``*.localhost``), IP literals (an IP address cannot be the product of a
    DNS lookup, so a server reached by address keeps working), the
    ``--host`` value, this machine's host name and fully qualified name when
    tensorboard listens on every interface (``--bind_all``, or a ``--host``
    of 0.0.0.0 or ::), and every name of ``--al_allowed_hosts`` (``*``
    allows any Host).  Ports do not matter.
    """

    def __init__(self, flags=None):
        host = (getattr(flags, "host", None) or "").strip().strip("[]").lower().rstrip(".")
        extra = parse_allowed_hosts(getattr(flags, "al_allowed_hosts", "") or "")
        self.any = "*" in extra
        self.names = {"localhost"} | set(extra)
        if host:
            self.names.add(host)
        if getattr(flags, "bind_all", False) or host in ("0.0.0.0", "::"):
            for name in (socket.gethostname(), socket.getfqdn()):
                if name:
                    self.names.add(name.lower().rstrip("."))

    def allows(self, host: str) -> bool:
        if self.any:
            return True
        try:
            name = (urllib.parse.urlsplit("//" + host).hostname or "").rstrip(".")
        except ValueError:
            return False
        if not name:
            return False
        if name in self.names or name.endswith(".localhost"):
            return True
        try:
            ipaddress.ip_address(name)
            return True
        except ValueError:
            return False

    def check(self, request) -> None:
        host = request.host  # werkzeug: "" when the header holds characters no host name has
        if not self.allows(host):
            raw = request.headers.get("Host", "")
            name = (urllib.parse.urlsplit("//" + host).hostname if host else None) or raw.split(":")[0]
            raise HTTPError(403, "Host %s is not allowed (a guard against DNS rebinding); start tensorboard "
                                 "with --al_allowed_hosts %s to allow it" % (raw or "(none)", name or "NAME"))


_HOST_NAME_RE = re.compile(r"^(\*|[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?|[0-9a-f:.]+)$")


def parse_allowed_hosts(value: str):
    """``--al_allowed_hosts a,b,c`` as a list of lower-case names; ValueError naming a bad one."""
    names = []
    for part in value.split(","):
        name = part.strip().strip("[]").lower().rstrip(".")
        if not part.strip():
            continue
        if not _HOST_NAME_RE.match(name):
            raise ValueError("%r is not a host name (give names like example.com, without port or scheme)"
                             % part.strip())
        names.append(name)
    return names


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
        body = json.loads(data.decode("utf-8") or "null", parse_constant=_refuse_constant,
                          parse_float=_finite_float)
    except RecursionError:
        raise HTTPError(400, "request body is not valid JSON: nested deeper than %d levels" % MAX_BODY_DEPTH)
    except (UnicodeDecodeError, ValueError) as e:
        raise HTTPError(400, "request body is not valid JSON: %s" % e)
    if not isinstance(body, dict):
        raise HTTPError(400, "request body must be a JSON object")
    _check_json_values(body)
    return body


def _refuse_constant(name):
    raise ValueError("%s is not a JSON number (give a finite number)" % name)


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("%s is too large for a number" % text)
    return value


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _check_json_values(body) -> None:
    """400 for what json.loads accepts but no route can use: deep nesting, lone surrogates ("\\ud800")."""
    stack = [(body, 1, None)]
    while stack:
        value, depth, field = stack.pop()
        if depth > MAX_BODY_DEPTH:
            raise HTTPError(400, "request body is not valid JSON: nested deeper than %d levels" % MAX_BODY_DEPTH)
        if isinstance(value, dict):
            for k, v in value.items():
                top = k if field is None else field
                if _SURROGATE_RE.search(k):
                    raise HTTPError(400, "request body holds the lone surrogate U+%04X in a field name, "
                                         "which is no Unicode character" % ord(_SURROGATE_RE.search(k).group()))
                if isinstance(v, (dict, list, str)):
                    stack.append((v, depth + 1, top))
        elif isinstance(value, list):
            stack.extend((v, depth + 1, field) for v in value if isinstance(v, (dict, list, str)))
        elif _SURROGATE_RE.search(value):
            raise HTTPError(400, 'field "%s" holds the lone surrogate U+%04X, which is no Unicode character'
                            % (field, ord(_SURROGATE_RE.search(value).group())))


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
    """Routes only: each parses its request, calls the embedding's Workspace (workspace.py) and answers."""

    plugin_name = PLUGIN_NAME

    def __init__(self, context, *, default_author=None, classifier_backend="numpy"):
        self._logdir = context.logdir
        self._flags = context.flags
        self.catalog = Catalog(context.logdir or None)
        self.workspaces = Workspaces(self.catalog, default_author=default_author or os_user(),
                                     classifier_backend=classifier_backend)
        self._hosts = AllowedHosts(context.flags)
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
            "/preview": self._serve_preview,
            "/neighbours": self._serve_neighbours,
        }
        routes.update(self._label_routes())
        routes.update(self._layout_routes())
        routes.update(self._active_routes())
        return {path: _route(handler, self._hosts) for path, handler in routes.items()}

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

    def _workspace(self, request):
        """The workspace named by the query's run and embedding (404 unknown, 422 broken)."""
        return self.workspaces.get(_arg(request, "run"), _arg(request, "embedding"))

    def _workspace_for_body(self, body):
        return self.workspaces.get(_field(body, "run", str), _field(body, "embedding", str))

    def _serve_tensor(self, request):
        tensor = self._workspace(request).features()
        return http_util.Respond(request, tensor.astype("<f4", copy=False).tobytes(), "application/octet-stream",
                                 headers=[("X-Rows", str(tensor.shape[0])), ("X-Dims", str(tensor.shape[1]))])

    def _serve_preview(self, request):
        """The quick PCA preview (3 columns), in the positions routes' formats."""
        return _positions_response(request, self._workspace(request).preview())

    def _serve_neighbours(self, request):
        """Row ``row``'s ``k`` nearest rows in feature space: little-endian uint32, nearest first."""
        ws = self._workspace(request)
        row, k = _int_arg(request, "row"), _int_arg(request, "k", minimum=1)
        try:
            order = ws.feature_neighbours(row, k)
        except IndexError as e:
            raise HTTPError(400, str(e))
        return http_util.Respond(request, order.astype("<u4", copy=False).tobytes(), "application/octet-stream",
                                 headers=[("X-Row", str(row)), ("X-Count", str(order.shape[0]))])

    def _serve_metadata(self, request):
        columns, data = self._workspace(request).metadata()
        return _respond_json(request, {"columns": columns, "data": data})

    def _serve_sprite(self, request):
        ws = self._workspace(request)
        ws.sprite()  # before parsing the page: no sprite (or a broken one) is the answer for any page
        try:
            data = ws.sprite_page(_int_arg(request, "page"))
        except IndexError as e:
            raise HTTPError(400, str(e))
        return http_util.Respond(request, data, "image/png", expires=3600)

    # -- labels ----------------------------------------------------------------------

    def _label_routes(self):
        routes = {"/labels/%s" % action: self._labels_write(action) for action in LABEL_ACTIONS}
        routes.update({
            "/labels": self._serve_labels,
            "/labels/history": self._serve_label_history,
            "/labels/export": self._serve_label_export,
        })
        return routes

    def _labels_write(self, action):
        def handler(request):
            body = _json_body(request)
            ws = self._workspace_for_body(body)
            if action == "assign":
                args = dict(rows=_rows(body), label=_field(body, "label", str))
            elif action == "clear":
                args = dict(rows=_rows(body))
            elif action == "rename":
                args = dict(old=_field(body, "from", str), new=_field(body, "to", str))
            elif action == "merge":
                args = dict(classes=_field(body, "classes", list), into=_field(body, "into", str))
            else:
                args = {}
            answer = _field(body, "answer", str, required=False, default="state")
            if answer not in LABEL_ANSWERS:
                raise HTTPError(400, 'field "answer" must be "state" or "changes"')
            state = ws.write_labels(action, author=_author_header(request), answer=answer,
                                    base_version=_field(body, "base_version", int, required=False), **args)
            return _respond_json(request, state)

        return handler

    def _serve_labels(self, request):
        return _respond_json(request, self._workspace(request).labels())

    def _serve_label_history(self, request):
        ws = self._workspace(request)
        since = _int_arg(request, "since") if request.args.get("since") is not None else 0
        return _respond_json(request, {"records": ws.history(since=since)})

    def _serve_label_export(self, request):
        ws = self._workspace(request)
        filename, text = ws.export_csv(all_rows=request.args.get("all_rows") in ("1", "true", "yes"))
        return http_util.Respond(request, text, "text/csv",
                                 headers=[("Content-Disposition", 'attachment; filename="%s"' % filename)])

    # -- active learning ---------------------------------------------------------------

    def _active_routes(self):
        return {
            "/active/predictions": self._serve_predictions,
            "/active/suggest": self._serve_suggest,
            "/rounds": self._serve_rounds,
            "/rounds/positions": self._serve_round_positions,
        }

    def _serve_rounds(self, request):
        return _respond_json(request, self._workspace(request).rounds())

    def _serve_round_positions(self, request):
        ws = self._workspace(request)
        try:
            positions = ws.round_positions(_int_arg(request, "round", minimum=1))
        except IndexError as e:
            raise HTTPError(404, str(e))
        return _positions_response(request, positions)

    def _serve_predictions(self, request):
        return _respond_json(request, self._workspace(request).predictions())

    def _serve_suggest(self, request):
        from .active import STRATEGIES

        body = _json_body(request)
        ws = self._workspace_for_body(body)
        strategy = _field(body, "strategy", str)
        if strategy not in STRATEGIES:
            raise HTTPError(400, 'unknown strategy "%s"; choose from %s' % (strategy, ", ".join(STRATEGIES)))
        n = _field(body, "n", int, required=False, default=10)
        if not 1 <= n <= 100:
            raise HTTPError(400, 'field "n" must be between 1 and 100, got %d' % n)
        try:
            with _bad_values_are_400():
                return _respond_json(request, ws.suggest(strategy, n))
        except NoLayout as e:
            raise HTTPError(409, str(e))

    # -- live layouts ----------------------------------------------------------------

    def _layout_routes(self):
        return {
            "/layout/start": self._layout_start,
            "/layout/pause": self._layout_call("pause"),
            "/layout/resume": self._layout_call("resume"),
            "/layout/params": self._layout_call("params"),
            "/layout/schema": self._layout_schema,
            "/layout/status": self._layout_status,
            "/layout/positions": self._layout_positions,
        }

    def _layout_start(self, request):
        body = _json_body(request)
        ws = self._workspace_for_body(body)
        params = {k: v for k, v in body.items() if k not in ("run", "embedding", "method")}
        with _bad_values_are_400():
            return _respond_json(request, ws.start_layout(body.get("method", "tsne"), params))

    def _layout_workspace(self, run, name, what="session"):
        """The embedding's workspace if a layout was ever started there (no discovery: polled often)."""
        ws = self.workspaces.existing(run, name)
        if ws is None:
            raise NoLayout("no layout %s for embedding %s of run %s"
                           % ("positions yet" if what == "positions" else "session", name, run))
        return ws

    def _layout_call(self, action):
        def handler(request):
            body = _json_body(request)
            ws = self._layout_workspace(_field(body, "run", str), _field(body, "embedding", str))
            params = {k: v for k, v in body.items() if k not in ("run", "embedding")} if action == "params" else {}
            with _bad_values_are_400():
                return _respond_json(request, ws.layout(action, **params))

        return handler

    def _layout_schema(self, request):
        """The layout's parameters (tsne/params.py): what the tab builds its form from."""
        from .tsne import params

        return _respond_json(request, params.schema())

    def _layout_status(self, request):
        ws = self._layout_workspace(_arg(request, "run"), _arg(request, "embedding"))
        return _respond_json(request, ws.layout_status())

    def _layout_positions(self, request):
        ws = self._layout_workspace(_arg(request, "run"), _arg(request, "embedding"), "positions")
        positions, iteration, objective, state = ws.layout_positions()
        headers = [("X-Iteration", str(int(iteration))),
                   ("X-Objective", "%.6g" % objective if objective is not None and np.isfinite(objective) else ""),
                   ("X-State", str(state))]
        return _positions_response(request, positions, headers)


def _positions_response(request, positions, headers=()):
    """A (rows, dims) array in the ``format`` the query asks for (wire.POSITION_FORMATS; float32 by default)."""
    fmt = request.args.get("format", "f32")
    if fmt not in POSITION_FORMATS:
        raise HTTPError(400, 'query parameter "format" must be one of %s, got "%s"' % (", ".join(POSITION_FORMATS), fmt))
    positions = np.asarray(positions)
    body, extra = encode_positions(positions, fmt)
    headers = list(headers) + extra + [("X-Rows", str(positions.shape[0])), ("X-Dims", str(positions.shape[1]))]
    return http_util.Respond(request, body, "application/octet-stream", headers=headers)


@contextlib.contextmanager
def _bad_values_are_400():
    """ValueError and TypeError from a room that checks a request's values (layout parameters, a strategy's
    input) are the client's mistake: 400 with their message. Elsewhere they stay bugs (500)."""
    try:
        yield
    except (ValueError, TypeError) as e:
        if isinstance(e, (SourceError, LabelError, NoLabels)):
            raise
        raise HTTPError(400, str(e))


def _rows(body):
    rows = _field(body, "rows", list)
    if not all(isinstance(r, int) and not isinstance(r, bool) for r in rows):
        raise HTTPError(400, 'field "rows" must be a list of row indices (integers)')
    return rows


def _author_header(request):
    """X-AL-User, or None.  HTTP headers travel as bytes; read them as UTF-8 when they are."""
    value = request.headers.get("X-AL-User")
    if not value:
        return None
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


class ActiveLabelingLoader(base_plugin.TBLoader):
    """Adds the ``--al_*`` flags, checks them before the server starts, and builds the plugin."""

    def define_flags(self, parser):
        group = parser.add_argument_group("active_labeling")
        group.add_argument("--al_user", metavar="NAME", type=str, default="",
                           help="Active Labeling: the author recorded with labels written through this "
                                "server (default: the OS user; a request header X-AL-User overrides it)")
        group.add_argument("--al_classifier", choices=["auto", "keras", "numpy"], default="numpy",
                           help="Active Labeling: implementation of the classifier retrained in the "
                                "background (default numpy: it trains this small network about 20x faster "
                                "on a CPU than Keras; auto: Keras when TensorFlow is installed, else numpy)")
        group.add_argument("--al_allowed_hosts", metavar="NAME,NAME", type=str, default="",
                           help="Active Labeling: more host names the tab may be opened by, comma-separated "
                                "(for a reverse proxy or a DNS name of this machine; * allows any). Without "
                                "them only localhost names, IP addresses, the --host value and, with "
                                "--bind_all, this machine's name are answered: a guard against DNS rebinding")

    def fix_flags(self, flags):
        """Refuse bad --al_* values at start-up: TensorBoard prints "Error: ..." and exits with status 1."""
        user = getattr(flags, "al_user", "") or ""
        if user:
            try:
                flags.al_user = validate_author(user)
            except LabelError as e:
                raise base_plugin.FlagsError("--al_user: %s" % e)
        try:
            parse_allowed_hosts(getattr(flags, "al_allowed_hosts", "") or "")
        except ValueError as e:
            raise base_plugin.FlagsError("--al_allowed_hosts: %s" % e)

    def load(self, context):
        flags = context.flags
        if flags is not None:
            self.fix_flags(flags)  # also when TensorBoard is embedded without its own flag checks
        author = getattr(flags, "al_user", "") if flags else ""
        backend = (getattr(flags, "al_classifier", None) if flags else None) or "numpy"
        return ActiveLabelingPlugin(context, default_author=author or None, classifier_backend=backend)
