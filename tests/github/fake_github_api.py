"""A local HTTP server that speaks the few GitHub REST endpoints Sorte's publish step uses.

GET /repos/{owner}/{repo}, GET /repos/{owner}/{repo}/pulls (``head`` and ``state`` filters) and
POST /repos/{owner}/{repo}/pulls, with the ``Authorization`` header checked against one token.
The JSON carries what PyGithub reads (number, html_url, url, state, head.ref, base.ref, ...).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class FakeGitHub:
    token: str
    repos: dict[str, set[str]] = field(default_factory=dict)  # "owner/name" -> branches on the remote
    pulls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    empty: set[str] = field(default_factory=set)  # branches with no commits beyond the base
    lose_created: int = 0  # creates this many pull requests but answers 502 (a response lost in transit)
    fail_next: list[int] = field(default_factory=list)  # statuses to answer before serving normally
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path with query)
    base_url: str = ""

    def posts(self) -> int:
        return sum(1 for method, _ in self.requests if method == "POST")

    def add_repo(self, full_name: str, *branches: str) -> None:
        self.repos[full_name] = {"main", *branches}
        self.pulls.setdefault(full_name, [])

    # --- JSON documents ----------------------------------------------------------------------

    def _user(self, login: str) -> dict[str, Any]:
        return {"login": login, "id": 1, "type": "User", "url": f"{self.base_url}/users/{login}"}

    def repo_json(self, full_name: str) -> dict[str, Any]:
        owner, name = full_name.split("/")
        return {
            "id": abs(hash(full_name)) % 100000,
            "name": name,
            "full_name": full_name,
            "owner": self._user(owner),
            "private": False,
            "default_branch": "main",
            "url": f"{self.base_url}/repos/{full_name}",
            "html_url": f"https://github.example/{full_name}",
        }

    def _pr_json(self, full_name: str, number: int, title: str, body: str, head: str, base: str) -> dict[str, Any]:
        owner = full_name.split("/")[0]
        return {
            "id": 1000 + number,
            "number": number,
            "state": "open",
            "title": title,
            "body": body,
            "url": f"{self.base_url}/repos/{full_name}/pulls/{number}",
            "html_url": f"https://github.example/{full_name}/pull/{number}",
            "user": self._user(owner),
            "head": {"ref": head, "label": f"{owner}:{head}", "sha": "0" * 40, "repo": self.repo_json(full_name)},
            "base": {"ref": base, "label": f"{owner}:{base}", "sha": "1" * 40, "repo": self.repo_json(full_name)},
            "merged": False,
            "draft": False,
        }

    # --- routing -----------------------------------------------------------------------------

    def handle(self, method: str, path: str, auth: str, payload: dict[str, Any]) -> tuple[int, Any]:
        self.requests.append((method, path))
        if self.fail_next:
            status = self.fail_next.pop(0)
            return status, {"message": "Bad Gateway" if status == 502 else "Server Error"}
        if auth not in (f"token {self.token}", f"Bearer {self.token}"):
            return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
        parts = urlsplit(path)
        segments = parts.path.strip("/").split("/")
        if len(segments) < 3 or segments[0] != "repos":
            return 404, {"message": "Not Found"}
        full_name = f"{segments[1]}/{segments[2]}"
        if full_name not in self.repos:
            return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
        rest = segments[3:]
        if not rest and method == "GET":
            return 200, self.repo_json(full_name)
        if rest == ["pulls"] and method == "GET":
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            state = query.get("state", "open")
            found = [
                pr
                for pr in self.pulls[full_name]
                if (state == "all" or pr["state"] == state)
                and ("head" not in query or pr["head"]["label"] == query["head"])
            ]
            return 200, found
        if rest == ["pulls"] and method == "POST":
            return self._create(full_name, payload)
        return 404, {"message": "Not Found"}

    def _create(self, full_name: str, payload: dict[str, Any]) -> tuple[int, Any]:
        head, base = payload.get("head", ""), payload.get("base", "")
        branches = self.repos[full_name]
        invalid = {"message": "Validation Failed", "documentation_url": "https://docs.github.com/rest"}
        if head not in branches:
            return 422, {**invalid, "errors": [{"resource": "PullRequest", "field": "head", "code": "invalid"}]}
        if base not in branches:
            return 422, {**invalid, "errors": [{"resource": "PullRequest", "field": "base", "code": "invalid"}]}
        if head == base or head in self.empty:
            return 422, {
                **invalid,
                "errors": [
                    {"resource": "PullRequest", "code": "custom", "message": f"No commits between {base} and {head}"}
                ],
            }
        owner = full_name.split("/")[0]
        if any(pr["head"]["label"] == f"{owner}:{head}" and pr["state"] == "open" for pr in self.pulls[full_name]):
            message = f"A pull request already exists for {owner}:{head}."
            return 422, {**invalid, "errors": [{"resource": "PullRequest", "code": "custom", "message": message}]}
        number = len(self.pulls[full_name]) + 1
        pr = self._pr_json(full_name, number, payload.get("title", ""), payload.get("body") or "", head, base)
        self.pulls[full_name].append(pr)
        if self.lose_created:
            self.lose_created -= 1
            return 502, {"message": "Bad Gateway"}
        return 201, pr


class _Handler(BaseHTTPRequestHandler):
    api: FakeGitHub

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        payload = json.loads(raw) if raw else {}
        status, doc = self.api.handle(method, self.path, self.headers.get("Authorization", ""), payload)
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


class FakeGitHubServer:
    """``with FakeGitHubServer(token) as api:`` serves on 127.0.0.1 on a free port."""

    def __init__(self, token: str) -> None:
        self.api = FakeGitHub(token=token)
        handler = type("Handler", (_Handler,), {"api": self.api})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.api.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self.api

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
