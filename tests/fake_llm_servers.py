"""Small local stand-ins for an Ollama server and an OpenAI-compatible server, for tests of
the LLM providers through the real client libraries (langchain-ollama / ``ollama`` and
langchain-openai / ``openai``).

Both speak the wire protocol those clients use:

- Ollama: ``POST /api/chat``, streaming (NDJSON over chunked transfer encoding, what
  ``ChatOllama.ainvoke`` asks for: it always sends ``"stream": true``) and non-streaming
  (one JSON object); ``GET /api/tags``, ``POST /api/show``, ``GET /api/ps`` (the models a
  chat call has loaded, ``vram_fraction`` of each in GPU memory), ``GET /api/version``.
  Errors are ``{"error": "..."}`` with the HTTP status Ollama uses
  (404 for a model that is not pulled).
- OpenAI: ``POST /v1/chat/completions`` (a ``chat.completion`` object, or server-sent
  events when ``"stream": true``), ``GET /v1/models``. Errors are
  ``{"error": {"message", "type", "param", "code"}}`` (404 ``model_not_found``, 401
  ``invalid_api_key`` when ``api_key`` is set and the request does not carry it).

Every request is recorded (method, path, headers, parsed JSON body) so tests can assert
what the client really sent, e.g. the JSON schema as Ollama ``format`` or as OpenAI
``response_format``.

Switches:

- ``answers``: the scripted answers of the chat endpoint, one per call, the last one
  repeating. An answer is the assistant's text, a ``Reply`` (text plus reasoning, finish
  reason, delay, fault) or a bare ``Fault``.
- ``models``: the models the server has; a chat or show call for any other model gets the
  server's "model not found" error.
- ``malformed_paths``: endpoints (e.g. ``/api/tags``) that answer 200 with an HTML page.
- ``delay_s``: every chat answer waits this long before its headers (a model loading or a
  server too slow for the client's timeout). ``stop()`` wakes sleeping handlers.
- ``Fault``: a body that is not JSON, a JSON body cut short, a connection dropped in the
  middle of the body, a 500, a stream that stalls after its first chunk, an error line in
  the middle of an Ollama stream.
- ``stop()``: the server goes away; connections are refused from then on.
"""

from __future__ import annotations

import contextlib
import enum
import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

VALID_ANSWER = '{"score": 0.8, "side": "BUY", "reason": "RSI under 30 and MACD crossing up"}'
NOT_JSON_BODY = "<html><body><h1>502 Bad Gateway</h1></body></html>"
STALL_S = 60.0  # a stalled stream stays silent this long (or until stop())


class Fault(enum.Enum):
    NOT_JSON = "not-json"  # HTTP 200 whose body is an HTML error page, not JSON
    TRUNCATED = "truncated"  # HTTP 200, a complete HTTP body holding JSON cut in half
    DROPPED = "dropped"  # the connection closes in the middle of the body
    SERVER_ERROR = "server-error"  # HTTP 500 with the protocol's error object
    STALL = "stall"  # headers and a first piece of the answer, then silence
    STREAM_ERROR = "stream-error"  # Ollama: an {"error": ...} line in the middle of the stream


@dataclass
class Reply:
    content: str = VALID_ANSWER
    thinking: str | None = None  # a reasoning model's thoughts (inline <think>, or a separate field)
    finish_reason: str = "stop"  # "length": the answer hit the token limit
    delay_s: float = 0.0
    fault: Fault | None = None


Answer = str | Reply | Fault


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any  # the parsed JSON body, the raw text if it is not JSON, None if empty


class _FakeServer:
    """The common part: lifecycle, recording, the answer script and the switches."""

    default_models: tuple[str, ...] = ()

    def __init__(self, models: tuple[str, ...] | list[str] | None = None, answers: list[Answer] | None = None):
        self.models: list[str] = list(models if models is not None else self.default_models)
        self.answers: list[Answer] = list(answers or [VALID_ANSWER])
        self.delay_s = 0.0
        self.malformed_paths: set[str] = set()  # paths answered with HTTP 200 and a body that is not JSON
        self.requests: list[Recorded] = []
        self.lock = threading.RLock()
        self.server: ThreadingHTTPServer | None = None
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> _FakeServer:
        handler = type("Handler", (self.handler_class,), {"fake": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Take the server down: from now on connections are refused."""
        self._stopping.set()  # wake handlers sleeping in a simulated delay or stall
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        for conn in list(self._connections):  # kept-alive client connections die too
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self.server is not None, "start() the server first"
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- script and records ------------------------------------------------------------
    def script(self, *answers: Answer) -> None:
        """Replace the scripted answers (the last one repeats)."""
        with self.lock:
            self.answers = list(answers)

    def next_reply(self) -> Reply:
        with self.lock:
            answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Fault):
            return Reply(fault=answer)
        return answer if isinstance(answer, Reply) else Reply(content=answer)

    def chat_requests(self) -> list[dict[str, Any]]:
        """The bodies of the chat calls received so far."""
        with self.lock:
            return [r.body for r in self.requests if r.method == "POST" and r.path == self.chat_path]

    chat_path = ""
    handler_class: type[_Handler]


class _Handler(BaseHTTPRequestHandler):
    fake: _FakeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def setup(self) -> None:
        super().setup()
        self.fake._connections.add(self.connection)

    def finish(self) -> None:
        self.fake._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError, OSError):  # a client that timed out and hung up
            super().handle()

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw
        with self.fake.lock:
            self.fake.requests.append(Recorded(method, path, {k.lower(): v for k, v in self.headers.items()}, body))
        try:
            if path in self.fake.malformed_paths:
                return self.send_json(200, NOT_JSON_BODY)
            self.route(method, path, body if isinstance(body, dict) else {})
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
            self.close_connection = True

    def route(self, method: str, path: str, body: dict[str, Any]) -> None:
        raise NotImplementedError

    # -- helpers for the protocol handlers ---------------------------------------------
    def wait(self, seconds: float) -> bool:
        """Sleep; False when the server is stopping (the handler should give up)."""
        if seconds and self.fake._stopping.wait(seconds):
            self.close_connection = True
            return False
        return True

    def send_json(self, status: int, payload: Any, content_type: str = "application/json") -> None:
        data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_fault(self, fault: Fault, whole: str, content_type: str = "application/json") -> bool:
        """Answer a non-streaming call with ``fault``; False if the fault is not a body fault."""
        if fault is Fault.NOT_JSON:
            self.send_json(200, NOT_JSON_BODY, content_type)
        elif fault is Fault.TRUNCATED:
            self.send_json(200, whole[: len(whole) // 2], content_type)
        elif fault is Fault.DROPPED:
            data = whole.encode()
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.drop()
        elif fault is Fault.STALL:
            data = whole.encode()
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[:10])
            self.wait(STALL_S)
            self.close_connection = True
        else:
            return False
        return True

    def begin_chunked(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def drop(self) -> None:
        """Close the connection at once, in the middle of whatever was being sent."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _pieces(text: str, size: int = 8) -> list[str]:
    """The answer as a model streams it: a few characters at a time."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


def _prompt_tokens(messages: Any) -> int:
    if not isinstance(messages, list):
        return 0
    return sum(_tokens(str(m.get("content", ""))) for m in messages if isinstance(m, dict))


# == Ollama ================================================================================


class FakeOllama(_FakeServer):
    """``ollama serve`` as the ``ollama`` Python client sees it."""

    default_models = ("mistral:7b-instruct-q4_K_M", "deepseek-r1:8b")
    chat_path = "/api/chat"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loaded: list[str] = []  # models a chat call has loaded, what /api/ps lists
        self.vram_fraction = 1.0  # share of each loaded model in GPU memory (0: CPU only)

    @property
    def handler_class(self) -> type[_Handler]:  # type: ignore[override]
        return _OllamaHandler


class _OllamaHandler(_Handler):
    fake: FakeOllama

    def route(self, method: str, path: str, body: dict[str, Any]) -> None:
        if (method, path) == ("POST", "/api/chat"):
            return self.chat(body)
        if (method, path) == ("GET", "/api/tags"):
            return self.send_json(200, {"models": [self.model_entry(m) for m in self.fake.models]})
        if (method, path) == ("GET", "/api/ps"):
            return self.send_json(200, {"models": [self.loaded_entry(m) for m in self.fake.loaded]})
        if (method, path) == ("GET", "/api/version"):
            return self.send_json(200, {"version": "0.9.6"})
        if (method, path) == ("POST", "/api/show"):
            model = str(body.get("model") or body.get("name") or "")
            if model not in self.fake.models:
                return self.send_json(404, {"error": f"model '{model}' not found"})
            return self.send_json(
                200,
                {
                    "modelfile": f"FROM {model}",
                    "parameters": "temperature 0.8",
                    "template": "{{ .Prompt }}",
                    "details": self.details(),
                    "model_info": {"general.architecture": "llama"},
                    "capabilities": ["completion"],
                },
            )
        return self.send_json(404, "404 page not found", "text/plain")

    @staticmethod
    def details() -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": "llama",
            "families": ["llama"],
            "parameter_size": "7.2B",
            "quantization_level": "Q4_K_M",
        }

    def loaded_entry(self, model: str) -> dict[str, Any]:
        size = 4_113_301_824
        return {
            **self.model_entry(model),
            "size_vram": int(size * self.fake.vram_fraction),
            "expires_at": "2099-01-01T00:00:00Z",
        }

    def model_entry(self, model: str) -> dict[str, Any]:
        return {
            "name": model,
            "model": model,
            "modified_at": "2025-01-01T00:00:00.000000000Z",
            "size": 4_113_301_824,
            "digest": "f974a74358d62a017b37c6f424fcdf2744ca02926c4f952513ddf474b2fa5091",
            "details": self.details(),
        }

    def chat(self, body: dict[str, Any]) -> None:
        fake = self.fake
        model = str(body.get("model", ""))
        if model not in fake.models:  # what `ollama serve` says for a model that is not pulled
            return self.send_json(404, {"error": f"model '{model}' not found"})
        with fake.lock:  # the model loads on its first chat call, as `ollama serve` does
            if model not in fake.loaded:
                fake.loaded.append(model)
        reply = fake.next_reply()
        if not self.wait(fake.delay_s + reply.delay_s):
            return None
        if reply.fault is Fault.SERVER_ERROR:
            return self.send_json(500, {"error": "llama runner process has terminated: signal: killed"})
        content = reply.content
        thinking = None
        if reply.thinking is not None:
            if body.get("think"):  # thinking asked for: a separate field, as Ollama does
                thinking = reply.thinking
            else:  # otherwise the model's own <think> tags stay in the content
                content = f"<think>\n{reply.thinking}\n</think>\n\n{content}"
        final = {
            "model": model,
            "created_at": _now(),
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": reply.finish_reason,
            "total_duration": 1_234_567_890,
            "load_duration": 12_345_678,
            "prompt_eval_count": _prompt_tokens(body.get("messages")),
            "prompt_eval_duration": 123_456_789,
            "eval_count": _tokens(content),
            "eval_duration": 987_654_321,
        }
        if body.get("stream", True):  # Ollama streams unless told not to
            return self.stream(model, content, thinking, final, reply.fault)
        whole = {**final, "message": {"role": "assistant", "content": content}}
        if thinking is not None:
            whole["message"]["thinking"] = thinking
        if reply.fault is not None and self.send_fault(reply.fault, json.dumps(whole)):
            return None
        return self.send_json(200, whole)

    def stream(
        self, model: str, content: str, thinking: str | None, final: dict[str, Any], fault: Fault | None
    ) -> None:
        self.begin_chunked("application/x-ndjson")
        if fault is Fault.NOT_JSON:
            self.chunk(NOT_JSON_BODY + "\n")
            return self.end_chunked()
        lines = []
        if thinking is not None:
            for piece in _pieces(thinking):
                message = {"role": "assistant", "content": "", "thinking": piece}
                lines.append({"model": model, "created_at": _now(), "message": message, "done": False})
        for piece in _pieces(content):
            message = {"role": "assistant", "content": piece}
            lines.append({"model": model, "created_at": _now(), "message": message, "done": False})
        lines.append(final)
        for i, line in enumerate(lines):
            text = json.dumps(line) + "\n"
            if i == 1 and fault is Fault.TRUNCATED:  # half a line, then a clean end of the body
                self.chunk(text[: len(text) // 2])
                return self.end_chunked()
            if i == 1 and fault is Fault.DROPPED:
                self.chunk(text[: len(text) // 2])
                return self.drop()
            if i == 1 and fault is Fault.STALL:
                self.wait(STALL_S)
                self.close_connection = True
                return None
            if i == 1 and fault is Fault.STREAM_ERROR:
                self.chunk(json.dumps({"error": "an error was encountered while running the model"}) + "\n")
                return self.end_chunked()
            self.chunk(text)
        return self.end_chunked()


# == OpenAI ================================================================================


class FakeOpenAI(_FakeServer):
    """An OpenAI-compatible server (llama.cpp server, vLLM, LiteLLM) as the ``openai``
    client sees it. ``url`` is the base URL clients take, with ``/v1``."""

    default_models = ("qwen2.5-coder-7b-instruct", "deepseek-r1-distill-llama-8b")
    chat_path = "/v1/chat/completions"

    def __init__(self, *args: Any, api_key: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.api_key = api_key  # when set, requests without "Authorization: Bearer <api_key>" get 401
        self.separate_reasoning = False  # True: thoughts in message.reasoning_content (vLLM, llama.cpp)
        self.json_mode_only = False  # True: a json_schema response_format gets 400, as older servers answer

    @property
    def handler_class(self) -> type[_Handler]:  # type: ignore[override]
        return _OpenAIHandler

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def _openai_error(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class _OpenAIHandler(_Handler):
    fake: FakeOpenAI

    def route(self, method: str, path: str, body: dict[str, Any]) -> None:
        key = self.fake.api_key
        if key is not None and self.headers.get("Authorization") != f"Bearer {key}":
            return self.send_json(
                401, _openai_error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
            )
        if (method, path) == ("POST", "/v1/chat/completions"):
            fmt = (body.get("response_format") or {}).get("type")
            if self.fake.json_mode_only and fmt == "json_schema":
                return self.send_json(
                    400,
                    _openai_error(
                        "response_format type json_schema is not supported",
                        "invalid_request_error",
                        None,
                        "response_format",
                    ),
                )
            return self.chat(body)
        if (method, path) == ("GET", "/v1/models"):
            data = [
                {"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "sorte"} for m in self.fake.models
            ]
            return self.send_json(200, {"object": "list", "data": data})
        return self.send_json(
            404, _openai_error(f"Unknown request URL: {method} {path}", "invalid_request_error", None)
        )

    def chat(self, body: dict[str, Any]) -> None:
        fake = self.fake
        model = str(body.get("model", ""))
        if model not in fake.models:
            message = f"The model `{model}` does not exist or you do not have access to it."
            return self.send_json(404, _openai_error(message, "invalid_request_error", "model_not_found", "model"))
        reply = fake.next_reply()
        if not self.wait(fake.delay_s + reply.delay_s):
            return None
        if reply.fault is Fault.SERVER_ERROR:
            return self.send_json(500, _openai_error("The server had an error.", "server_error", None))
        message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
        if reply.thinking is not None:
            if fake.separate_reasoning:
                message["reasoning_content"] = reply.thinking
            else:
                message["content"] = f"<think>\n{reply.thinking}\n</think>\n\n{reply.content}"
        created = int(time.time())
        prompt, completion = _prompt_tokens(body.get("messages")), _tokens(message["content"])
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        if body.get("stream"):
            return self.stream(model, created, message, reply.finish_reason, usage, reply.fault)
        whole = {
            "id": f"chatcmpl-{len(fake.requests)}",
            "object": "chat.completion",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_sorte",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}],
            "usage": usage,
        }
        if reply.fault is not None and self.send_fault(reply.fault, json.dumps(whole)):
            return None
        return self.send_json(200, whole)

    def stream(
        self,
        model: str,
        created: int,
        message: dict[str, Any],
        finish_reason: str,
        usage: dict[str, int],
        fault: Fault | None,
    ) -> None:
        self.begin_chunked("text/event-stream")
        if fault is Fault.NOT_JSON:
            self.chunk(f"data: {NOT_JSON_BODY}\n\n")
            return self.end_chunked()
        base = {"id": "chatcmpl-stream", "object": "chat.completion.chunk", "created": created, "model": model}
        events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
        for piece in _pieces(message["content"] or ""):
            events.append({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}]})
        events.append({**base, "choices": [], "usage": usage})
        for i, event in enumerate(events):
            text = f"data: {json.dumps(event)}\n\n"
            if i == 1 and fault is Fault.TRUNCATED:
                self.chunk(text[: len(text) // 2] + "\n\n")
                return self.end_chunked()
            if i == 1 and fault is Fault.DROPPED:
                self.chunk(text[: len(text) // 2])
                return self.drop()
            if i == 1 and fault is Fault.STALL:
                self.wait(STALL_S)
                self.close_connection = True
                return None
            self.chunk(text)
        self.chunk("data: [DONE]\n\n")
        return self.end_chunked()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())


def unused_port() -> int:
    """A port nothing listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
