"""A local HTTP server that speaks the part of the Telegram Bot API that Sorte's bot uses.

The real python-telegram-bot client talks to it over HTTP (``telegram.base_url`` points here):
getMe, getUpdates (long polling from a queue the test fills), sendMessage, editMessageText,
editMessageReplyMarkup, answerCallbackQuery, sendDocument (multipart), setMyCommands,
deleteWebhook, sendChatAction. Every call is recorded with its decoded parameters so tests
can assert on exactly what went over the wire.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

BOT_ID = 4242
MAX_POLL_S = 2.0  # a long poll answers empty after this, so a stopping client never waits long


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # name -> (filename, content)


def _decode(value: str) -> Any:
    """PTB JSON-encodes every non-string parameter; strings arrive as they are."""
    try:
        return json.loads(value)
    except ValueError:
        return value


class FakeTelegram:
    """The server's state: updates waiting for getUpdates, messages sent, every call."""

    def __init__(self, token: str = "123:TEST") -> None:
        self.token = token
        self.calls: list[Call] = []
        self.commands: list[dict[str, Any]] = []
        self._updates: list[dict[str, Any]] = []
        self._next_update = 1
        self._next_message = 100
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self.base_url = ""

    # -- what tests use ---------------------------------------------------------------------
    def start(self) -> FakeTelegram:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                fake._serve(self)

            do_GET = do_POST  # noqa: N815

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/bot"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def text(self, user_id: int, text: str, *, chat_id: int | None = None, language_code: str = "en") -> int:
        """Queue a message from ``user_id`` (in its private chat unless ``chat_id``); returns the update id."""
        chat = chat_id if chat_id is not None else user_id
        message: dict[str, Any] = {
            "message_id": self._new_message_id(),
            "date": int(time.time()),
            "chat": {"id": chat, "type": "private" if chat == user_id else "group", "title": "group"},
            "from": self._user(user_id, language_code),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return self._push({"message": message})

    def press(self, user_id: int, message: dict[str, Any], data: str) -> int:
        """Queue a press of an inline button (``data``) under a message the bot sent."""
        query = {
            "id": f"cq{self._next_update}",
            "from": self._user(user_id, "en"),
            "chat_instance": "ci",
            "data": data,
            "message": message,
        }
        return self._push({"callback_query": query})

    def of(self, method: str) -> list[Call]:
        return [c for c in list(self.calls) if c.method == method]

    def sent_to(self, chat_id: int) -> list[str]:
        """Texts sent to a chat (sendMessage) in order."""
        return [str(c.params.get("text", "")) for c in self.of("sendMessage") if int(c.params["chat_id"]) == chat_id]

    def message(self, chat_id: int, message_id: int) -> dict[str, Any]:
        """The current state of a message the bot sent (edits applied)."""
        return self._messages[(chat_id, message_id)]

    def messages(self, chat_id: int) -> list[dict[str, Any]]:
        """Every message the bot sent to a chat, oldest first, as it is now (edits applied)."""
        found = [m for (chat, _), m in list(self._messages.items()) if chat == chat_id]
        return sorted(found, key=lambda m: m["message_id"])

    def pending(self) -> int:
        with self._cond:
            return len(self._updates)

    # -- internals ----------------------------------------------------------------------------
    def _user(self, user_id: int, language_code: str) -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": f"user{user_id}", "language_code": language_code}

    def _new_message_id(self) -> int:
        with self._cond:
            self._next_message += 1
            return self._next_message

    def _push(self, body: dict[str, Any]) -> int:
        with self._cond:
            update_id = self._next_update
            self._next_update += 1
            self._updates.append({"update_id": update_id, **body})
            self._cond.notify_all()
            return update_id

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        prefix = f"/bot{self.token}/"
        if not request.path.startswith(prefix):
            return self._reply(request, 404, {"ok": False, "error_code": 404, "description": "Not Found"})
        method = request.path[len(prefix) :].split("?")[0]
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        params, files = self._parse(request.headers.get("Content-Type", ""), body)
        self.calls.append(Call(method, params, files))
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return self._reply(request, 404, {"ok": False, "error_code": 404, "description": f"no method {method}"})
        result = handler(params, files)
        if isinstance(result, tuple):  # an error: (status, description)
            status, description = result
            return self._reply(request, status, {"ok": False, "error_code": status, "description": description})
        return self._reply(request, 200, {"ok": True, "result": result})

    @staticmethod
    def _parse(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
        if content_type.startswith("multipart/form-data"):
            head = f"Content-Type: {content_type}\r\n\r\n".encode()
            parsed = BytesParser(policy=HTTP).parsebytes(head + body)
            params: dict[str, Any] = {}
            files: dict[str, tuple[str, bytes]] = {}
            for part in parsed.iter_parts():
                name = part.get_param("name", header="content-disposition")
                filename = part.get_filename()
                payload = part.get_payload(decode=True) or b""
                if filename is not None:
                    files[str(name)] = (filename, payload)
                else:
                    params[str(name)] = _decode(payload.decode())
            return params, files
        if content_type.startswith("application/json"):
            return (json.loads(body) if body else {}), {}
        return {k: _decode(v) for k, v in parse_qsl(body.decode())}, {}

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            request.send_response(status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on a long poll (it is stopping): the update stays queued

    def _bot_message(self, chat_id: int, **content: Any) -> dict[str, Any]:
        message = {
            "message_id": self._new_message_id(),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group", "title": "chat"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Sorte", "username": "sorte_bot"},
            **content,
        }
        self._messages[(chat_id, message["message_id"])] = message
        return message

    # -- the API methods ------------------------------------------------------------------------
    def _api_getMe(self, params: dict, files: dict) -> dict[str, Any]:  # noqa: N802
        return {"id": BOT_ID, "is_bot": True, "first_name": "Sorte", "username": "sorte_bot"}

    def _api_deleteWebhook(self, params: dict, files: dict) -> bool:  # noqa: N802
        return True

    def _api_setMyCommands(self, params: dict, files: dict) -> bool:  # noqa: N802
        self.commands = params.get("commands") or []
        return True

    def _api_getUpdates(self, params: dict, files: dict) -> list[dict[str, Any]]:  # noqa: N802
        offset = int(params.get("offset") or 0)
        wait = min(float(params.get("timeout") or 0), MAX_POLL_S)
        deadline = time.monotonic() + wait
        with self._cond:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]  # confirmed ones are gone
            while not self._updates and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
            return list(self._updates)

    def _api_sendMessage(self, params: dict, files: dict) -> dict[str, Any]:  # noqa: N802
        content: dict[str, Any] = {"text": params["text"]}
        if "reply_markup" in params:
            content["reply_markup"] = params["reply_markup"]
        return self._bot_message(int(params["chat_id"]), **content)

    def _api_sendDocument(self, params: dict, files: dict) -> dict[str, Any] | tuple[int, str]:  # noqa: N802
        if "document" not in files:
            return 400, "Bad Request: there is no document in the request"
        filename, data = files["document"]
        document = {
            "file_id": f"f{len(self.calls)}",
            "file_unique_id": "u",
            "file_name": filename,
            "file_size": len(data),
        }
        extra = {"caption": params["caption"]} if "caption" in params else {}
        return self._bot_message(int(params["chat_id"]), document=document, **extra)

    def _api_editMessageText(self, params: dict, files: dict) -> dict[str, Any] | tuple[int, str]:  # noqa: N802
        key = (int(params["chat_id"]), int(params["message_id"]))
        message = self._messages.get(key)
        if message is None:
            return 400, "Bad Request: message to edit not found"
        if message.get("text") == params["text"] and message.get("reply_markup") == params.get("reply_markup"):
            return 400, "Bad Request: message is not modified"  # what the real API answers
        message["text"] = params["text"]
        if "reply_markup" in params:
            message["reply_markup"] = params["reply_markup"]
        else:
            message.pop("reply_markup", None)  # an edit without markup removes the buttons
        message["edit_date"] = int(time.time())
        return message

    def _api_answerCallbackQuery(self, params: dict, files: dict) -> bool:  # noqa: N802
        return True

    def _api_sendChatAction(self, params: dict, files: dict) -> bool:  # noqa: N802
        return True

    def _api_close(self, params: dict, files: dict) -> bool:
        return True
