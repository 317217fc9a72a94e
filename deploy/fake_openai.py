"""A stand-in for a paid LLM provider: a real HTTP server speaking the OpenAI chat-completions protocol
(`POST /v1/chat/completions`). It answers from a script and records every request it receives (headers and
body), so the tests can check what would have left the building and the benchmark can time a cycle without a
model's own latency. Runs in a thread of the calling process; the Strategist reaches it over TCP, from that
process or a Celery worker."""

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        return orjson.loads(self.body)


@dataclass
class Step:
    """One scripted answer: `content` as the assistant's message, or a failure mode."""

    content: str | None = None
    refusal: str | None = None
    status: int = 200
    raw: bytes | None = None  # sent as the whole body, as is (malformed responses)
    delay_s: float = 0.0  # wait before answering (a timeout, a hang)
    usage: dict[str, int] | None = None
    finish_reason: str = "stop"


@dataclass
class FakeOpenAI:
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port (the tests); `make up` names one (deploy/dev_llm.py)
    script: deque[Step] = field(default_factory=deque)
    default: Step = field(default_factory=lambda: Step(content=no_change()))
    requests: list[Recorded] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _released: threading.Event = field(default_factory=threading.Event)

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self._server.server_address[1]}/v1"

    def then(self, *steps: Step) -> "FakeOpenAI":
        self.script.extend(steps)
        return self

    def start(self) -> "FakeOpenAI":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.requests.append(Recorded(self.path, dict(self.headers.items()), body))
                step = fake.script.popleft() if fake.script else fake.default
                if step.delay_s:
                    fake._released.wait(step.delay_s)
                if self.path != "/v1/chat/completions":
                    self._send(404, b'{"error": {"message": "not found"}}')
                    return
                if step.raw is not None:
                    self._send(step.status, step.raw)
                    return
                message: dict[str, Any] = {"role": "assistant", "content": step.content}
                if step.refusal is not None:
                    message = {"role": "assistant", "content": None, "refusal": step.refusal}
                usage = step.usage or {
                    "prompt_tokens": len(body) // 4,
                    "completion_tokens": len(step.content or "") // 4,
                }
                usage = {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]}
                reply = {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": orjson.loads(body).get("model", "?"),
                    "choices": [{"index": 0, "message": message, "finish_reason": step.finish_reason}],
                    "usage": usage,
                }
                self._send(step.status, orjson.dumps(reply))

            def _send(self, status: int, payload: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout under test)

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True).start()
        return self

    def stop(self) -> None:
        self._released.set()  # let delayed answers go
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def bodies(self) -> str:
        return "\n".join(r.body.decode(errors="replace") for r in self.requests)


def answer(decision: str = "propose", rationale: str = "because", changes: list[dict[str, Any]] | None = None) -> str:
    return orjson.dumps({"decision": decision, "rationale": rationale, "changes": changes or []}).decode()


def no_change(rationale: str = "nothing to change") -> str:
    return answer("no_change", rationale)
