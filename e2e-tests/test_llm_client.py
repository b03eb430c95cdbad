"""The LLM client against an OpenAI-compatible HTTP server: structured output, error classes, re-asks."""
from __future__ import annotations

import os
import socket

import pytest

from fake_llm import FakeLLM
from shared.runtime.config import LLMConfig, ModelEndpoint
from shared.runtime.llm import InvalidModelOutput, LLMClient, LLMPermanentError, LLMTransientError

SCHEMA = {"type": "object", "properties": {"user_message": {"type": "string"}, "is_task_complete": {"type": "boolean"}},
          "required": ["user_message", "is_task_complete"]}
ASK = [{"role": "system", "content": "play a user"}, {"role": "user", "content": "- look up customer 7"}]


@pytest.fixture
def fake():
    with FakeLLM() as server:
        yield server


def client(fake, mode="json_schema", attempts=3) -> LLMClient:
    endpoint = ModelEndpoint(base_url=fake.base_url, model="fake", structured_output=mode, timeout_s=5, extra_body={})
    return LLMClient(LLMConfig(default=endpoint, max_attempts=attempts, invalid_json_attempts=2), "user_sim")


@pytest.mark.parametrize("mode", ["json_schema", "json_object_schema"])
def test_structured_output_in_both_server_dialects(fake, mode):
    result = client(fake, mode).chat(ASK, schema=SCHEMA, schema_name="user_turn")
    assert result.data["is_task_complete"] is False and result.usage.completion_tokens > 0
    fmt = fake.requests[-1]["response_format"]
    if mode == "json_schema":
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"] == SCHEMA
    else:
        assert fmt == {"type": "json_object", "schema": SCHEMA}


def test_transient_errors_are_retried_then_succeed(fake):
    fake.fail_next = [(429, "slow down"), (503, "loading")]
    result = client(fake).chat(ASK, schema=SCHEMA)
    assert result.data["user_message"]
    assert len(fake.requests) == 3
    # Every attempt names the process that sent it: repeats by one sender are retries, not crash recovery.
    assert [n for (_, sender), n in fake.by_sender.items()] == [3]
    assert list(fake.by_sender)[0][1] == f"{socket.gethostname()}/{os.getpid()}"


def test_transient_errors_give_up_after_max_attempts(fake):
    fake.fail_next = [(500, "boom")] * 5
    with pytest.raises(LLMTransientError, match="HTTP 500"):
        client(fake, attempts=2).chat(ASK, schema=SCHEMA)
    assert len(fake.requests) == 2


def test_context_overflow_is_permanent_and_not_retried(fake):
    fake.fail_next = [(400, "This model's maximum context length is 4096 tokens")]
    with pytest.raises(LLMPermanentError, match="context overflow"):
        client(fake).chat(ASK, schema=SCHEMA)
    assert len(fake.requests) == 1


def test_invalid_json_is_asked_again_then_fails_permanently(fake):
    fake.overrides["user_turn"] = lambda body: '{"user_message": "hi", "is_task_complete": tru'
    with pytest.raises(InvalidModelOutput, match="not valid JSON"):
        client(fake).chat(ASK, schema=SCHEMA)
    assert len(fake.requests) == 2
    fake.overrides["user_turn"] = lambda body: '{"user_message": 5}'
    with pytest.raises(InvalidModelOutput, match="does not match the schema"):
        client(fake).chat(ASK, schema=SCHEMA)
