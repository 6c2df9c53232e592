"""A small client of proftask's HTTP API. urllib, not a library: the CLI needs a handful of
GET/POST calls and the standard library does them without another pinned dependency."""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

DEFAULT_SERVER = "http://127.0.0.1:8080"


def task_path(task_id: str, rest: str = "") -> str:
    """The API path of a task, its id quoted: an id with a space, '#', '?' or '/' in it is asked
    about as written (a NOT_FOUND), not cut short, nor a traceback of urllib."""
    return f"/api/v1/pprof/tasks/{urllib.parse.quote(task_id, safe='')}{rest}"


class ClientError(Exception):
    def __init__(self, status: int, code: str, reason: str):
        super().__init__(f"{code}: {reason}" if code else reason)
        self.status, self.code, self.reason = status, code, reason


class ApiClient:
    def __init__(self, server: str = DEFAULT_SERVER, token: str | None = None, timeout: float = 300):
        self.server, self.token, self.timeout = server.rstrip("/"), token, timeout

    def _request(self, method: str, path: str, params: dict | None = None, body: Any = None) -> bytes:
        query = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v not in (None, "")})
        url = self.server + path + ("?" + query if query else "")
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return r.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                err = json.loads(raw)
                raise ClientError(e.code, err.get("code", ""), err.get("errorReason") or raw.decode()) from None
            except (ValueError, AttributeError):
                raise ClientError(e.code, f"HTTP_{e.code}", raw.decode(errors="replace")[:500]) from None
        except urllib.error.URLError as e:
            raise ClientError(0, "UNREACHABLE", f"cannot reach {self.server}: {e.reason}") from None

    def get(self, path: str, **params) -> Any:
        return json.loads(self._request("GET", path, params))

    def get_bytes(self, path: str, **params) -> bytes:
        return self._request("GET", path, params)

    def post(self, path: str, body: Any) -> Any:
        return json.loads(self._request("POST", path, body=body))
