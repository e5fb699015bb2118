"""Gunicorn's logger for SMS Hub's web processes (`logger_class` in smshub/gunicorn.conf.py).

Gunicorn builds every access-log line from a dict of *atoms*: a dozen of its own plus one per
request header, response header and WSGI environ entry (about 50 for an API call), each then
escaped. The hub's line and its JSON fields (`smshub.logging`) read ten of them, so this logger
builds those ten only: under a stream of single API sends the access log was a tenth of the web
processes' CPU, about an eleventh since (most of it Python's logging: the record, its filters,
the JSON, the write). A format that asks for any other atom gets gunicorn's whole dict, as
before. Where the proxy's log is enough, `GUNICORN_ACCESS_LOG=false` (`WithoutAccessLog`)
writes none.
"""

import re

from gunicorn.glogging import Logger

# The atoms built here: the hub's format (`access_log_format`) and `smshub.logging`'s fields.
RESPONSE_HEADER = "x-request-id"
ATOMS = frozenset(
    {"h", "r", "s", "m", "U", "q", "b", "B", "a", "D", "M", f"{{{RESPONSE_HEADER}}}o"}
)
_FORMAT_ATOM = re.compile(r"%\(([^)]*)\)")


class AccessLogger(Logger):
    """Gunicorn's logger, building only the atoms the access-log line and its fields use."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        used = set(_FORMAT_ATOM.findall(cfg.access_log_format))
        self.few_atoms = used <= ATOMS

    def atoms(self, resp, req, environ, request_time) -> dict:
        if not self.few_atoms:  # set by `setup`, which gunicorn's Logger runs when made
            return super().atoms(resp, req, environ, request_time)
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        sent = getattr(resp, "sent", None)
        method = environ["REQUEST_METHOD"]
        microseconds = request_time.seconds * 1_000_000 + request_time.microseconds
        atoms = {
            "h": environ.get("REMOTE_ADDR", "-"),
            "r": f"{method} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}",
            "s": status,
            "m": method,
            "U": environ.get("PATH_INFO"),
            "q": environ.get("QUERY_STRING"),
            "b": str(sent) if sent is not None else "-",
            "B": sent,
            "a": environ.get("HTTP_USER_AGENT", "-"),
            "D": microseconds,
            "M": microseconds // 1000,
        }
        for name, value in resp.headers:
            if name.lower() == RESPONSE_HEADER:
                atoms[f"{{{RESPONSE_HEADER}}}o"] = value
        return atoms


class WithoutAccessLog(AccessLogger):
    """No access-log line at all (`GUNICORN_ACCESS_LOG=false`): the proxy in front logs every
    request (deploy/nginx.conf), with the response's X-Request-ID. Errors are logged as ever."""

    def access(self, resp, req, environ, request_time) -> None:
        return None
