"""The LLM brain: any server that speaks the OpenAI chat-completions protocol (hosted providers, vLLM, Ollama,
llama.cpp), configured by `CIO_LLM_BASE_URL`, `CIO_LLM_MODEL` and `CIO_LLM_API_KEY` (docs/strategist.md).

The key is read from the environment, sent only in the `Authorization` header, and never stored in a setting,
a log line, a prompt or a thought. Every request body is scrubbed of every secret this process knows before it
leaves. An answer that is not the JSON asked for, or not a valid policy, is asked for again (`CIO_LLM_REASKS`
times); a timeout, an HTTP error, a refusal, an answer still invalid or a day's token budget spent raises
`BrainUnavailableError`, and the cycle falls back to the rule brain."""

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import httpx
import orjson
from pydantic import ValidationError

from cio_kernel.policy.spec import schema_problems
from cio_kernel.redaction import SecretScrubber
from strategist.brains.base import BrainUnavailableError, PatchCheck, Thinking
from strategist.brains.prompt import LlmAnswer, messages_for, prompt_hash, retry_message
from strategist.budget import TokenBudget, estimate_tokens
from strategist.context import CycleContext

MAX_RESPONSE_BYTES = 1024 * 1024
RAW_OUTPUT_LIMIT = 20_000  # characters of a model's answer kept in the thought
RESPONSE_FORMATS = ("json_object", "none")


@dataclass(frozen=True)
class LlmConfig:
    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 30.0
    max_tokens: int = 1000
    daily_token_budget: int = 200_000
    response_format: str = "json_object"
    reasks: int = 1
    temperature: float = 0.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "LlmConfig | None":
        """None when no LLM is configured (`CIO_LLM_BASE_URL` unset): the rule brain answers."""
        env = os.environ if environ is None else environ
        base_url = env.get("CIO_LLM_BASE_URL", "").strip()
        if not base_url:
            return None
        config = cls(
            base_url=base_url.rstrip("/"),
            model=env.get("CIO_LLM_MODEL", "gpt-4o-mini"),
            api_key=env.get("CIO_LLM_API_KEY") or None,
            timeout_s=float(env.get("CIO_LLM_TIMEOUT_S", "30")),
            max_tokens=int(env.get("CIO_LLM_MAX_TOKENS", "1000")),
            daily_token_budget=int(env.get("CIO_LLM_DAILY_TOKEN_BUDGET", "200000")),
            response_format=env.get("CIO_LLM_RESPONSE_FORMAT", "json_object"),
            reasks=int(env.get("CIO_LLM_REASKS", "1")),
        )
        if config.response_format not in RESPONSE_FORMATS:
            raise ValueError(f"CIO_LLM_RESPONSE_FORMAT must be one of {', '.join(RESPONSE_FORMATS)}")
        return config

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/chat/completions"


@dataclass
class _Spent:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 0
    raw_output: str = ""
    prompt_hash: str | None = None

    def failure(self, reason: str, detail: str) -> BrainUnavailableError:
        return BrainUnavailableError(
            reason,
            detail,
            raw_output=self.raw_output,
            prompt_hash=self.prompt_hash,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            attempts=self.attempts,
        )


class LlmBrain:
    name = "llm"

    def __init__(self, config: LlmConfig, budget: TokenBudget, scrubber: SecretScrubber) -> None:
        self.config = config
        self.model = config.model
        self._budget = budget
        self._scrubber = scrubber

    def think(self, context: CycleContext, check: PatchCheck) -> Thinking:
        messages = self._scrubber.value(messages_for(context))
        spent = _Spent(prompt_hash=prompt_hash(messages))
        client = _client(self.config.timeout_s)
        for _ in range(1 + max(0, self.config.reasks)):
            content = self._ask(client, messages, spent)
            answer, problems = self._read(content, check)
            if answer is not None and not problems:
                changes = answer.changes if answer.decision == "propose" else []
                return Thinking(
                    changes=changes,
                    rationale=self._scrubber.text(answer.rationale),
                    model=self.model,
                    raw_output=spent.raw_output,
                    prompt_hash=spent.prompt_hash,
                    prompt_tokens=spent.prompt_tokens,
                    completion_tokens=spent.completion_tokens,
                    attempts=spent.attempts,
                )
            messages = [*messages, {"role": "assistant", "content": content}, retry_message(problems)]
            messages = self._scrubber.value(messages)
        raise spent.failure("invalid_output", "; ".join(problems[:5]))

    def _ask(self, client: httpx.Client, messages: list[dict[str, str]], spent: _Spent) -> str:
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
        }
        if self.config.response_format == "json_object":
            body["response_format"] = {"type": "json_object"}
        encoded = orjson.dumps(body)
        now = datetime.now(UTC)
        prompt_estimate = estimate_tokens(encoded.decode())
        could_spend = prompt_estimate + self.config.max_tokens
        if not self._budget.allows(could_spend, now):
            raise spent.failure(
                "budget",
                f"{self._budget.spent(now)} of {self._budget.daily_tokens} tokens spent today; "
                f"this call could take {could_spend}",
            )
        spent.attempts += 1
        headers = {"Content-Type": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        started = time.monotonic()
        try:
            with client.stream("POST", self.config.endpoint, content=encoded, headers=headers) as response:
                raw = bytearray()
                for chunk in response.iter_bytes():
                    raw += chunk
                    if len(raw) > MAX_RESPONSE_BYTES:
                        raise spent.failure("http_error", f"the answer exceeded {MAX_RESPONSE_BYTES} bytes")
                    if time.monotonic() - started > self.config.timeout_s:
                        raise httpx.ReadTimeout("the answer took longer than the timeout")
                status = response.status_code
        except httpx.TimeoutException as exc:
            self._budget.spend(prompt_estimate, now)  # the server may have worked on it
            raise spent.failure(
                "timeout", f"no answer within {self.config.timeout_s:g} s ({type(exc).__name__})"
            ) from exc
        except httpx.HTTPError as exc:
            raise spent.failure("http_error", f"{type(exc).__name__}: {self._scrubber.text(str(exc))}") from exc
        if status >= 400:
            snippet = self._scrubber.text(bytes(raw[:300]).decode(errors="replace"))
            raise spent.failure("http_error", f"HTTP {status}: {snippet}")
        try:
            payload = orjson.loads(raw)
            choice = payload["choices"][0]
            message = choice.get("message") or {}
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise spent.failure("invalid_output", f"not a chat-completions response ({type(exc).__name__})") from exc
        usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else {}
        content = message.get("content") if isinstance(message.get("content"), str) else ""
        prompt_tokens = _int(usage.get("prompt_tokens")) or prompt_estimate
        completion_tokens = _int(usage.get("completion_tokens")) or estimate_tokens(content)
        spent.prompt_tokens += prompt_tokens
        spent.completion_tokens += completion_tokens
        self._budget.spend(prompt_tokens + completion_tokens, now)
        spent.raw_output = self._scrubber.text(content[:RAW_OUTPUT_LIMIT])
        refusal = message.get("refusal")
        if refusal or choice.get("finish_reason") == "content_filter" or not content.strip():
            why = self._scrubber.text(str(refusal)) if refusal else f"finish_reason {choice.get('finish_reason')}"
            raise spent.failure("refusal", f"the model declined or said nothing ({why})")
        return content

    @staticmethod
    def _read(content: str, check: PatchCheck) -> tuple[LlmAnswer | None, list[str]]:
        text = content.strip()
        if text.startswith("```"):  # some local models fence their JSON
            text = text.strip("`").removeprefix("json").strip()
        try:
            answer = LlmAnswer.model_validate_json(text)
        except ValidationError as exc:
            return None, schema_problems(exc, root="answer")[:20]
        if answer.decision == "no_change":
            return answer, []
        if not answer.changes:
            return answer, ["decision is propose but changes is empty"]
        return answer, check(answer.changes)


@lru_cache(maxsize=4)
def _client(timeout_s: float) -> httpx.Client:
    """One client per timeout, kept: its TLS context and connection pool are built once, not per cycle."""
    return httpx.Client(timeout=timeout_s)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
