"""Configuration: one YAML file plus environment variables (TURNFORGE_SECTION__FIELD), via pydantic-settings.

Precedence, highest first: environment, the YAML file named by TURNFORGE_CONFIG (or passed explicitly),
then the defaults below, which describe the embedded laptop stack.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ROLES = ("tool_synth", "schema_predictor", "task_generator", "user_sim", "agent", "tool_simulator", "judge")


class KafkaConfig(BaseModel):
    bootstrap_servers: str = "127.0.0.1:19092"
    topic_prefix: str = "tf."
    partitions: int = 4
    # Per-topic counts over `partitions` (e.g. {turns.user: 16}) and the replication factor of created topics.
    topic_partitions: dict[str, int] = Field(default_factory=dict)
    replication_factor: int = 1
    # tansu holds a group join for about half the session timeout, so keep it short.
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 2000
    max_poll_interval_ms: int = 600_000
    # Commit each handler's outputs together with the consumed offsets in one Kafka transaction (real Kafka;
    # off for the embedded broker). Consumers then read committed records only.
    transactions: bool = False
    transaction_timeout_ms: int = 30_000
    # How long the broker may hold a fetch that found nothing new. On tansu a held fetch often ends only when this
    # runs out, so it bounds a hop's wait: kafka-python's 500 ms gave hops of 80 ms p50; 50 ms gives about 14 ms
    # for 4% of a core per idle service (10 ms: 7-20 ms for 10%). Real Kafka answers a held fetch when data comes.
    # configs/default.yaml sets 500 ms: with a local model on the same cores, every idle percent slows the model.
    fetch_max_wait_ms: int = 50
    # How long the producer waits to batch a send. Handlers send a few records and wait for their acknowledgement
    # before the next message's work, so waiting only delays the hop.
    linger_ms: int = 0


class PostgresConfig(BaseModel):
    dsn: str = "postgresql://postgres@127.0.0.1:15432/turnforge"
    # Applied to every tool statement run in a sandbox.
    statement_timeout_ms: int = 3000


class ModelEndpoint(BaseModel):
    base_url: str = "http://127.0.0.1:18080/v1"
    api_key: str = "not-needed"
    model: str = "qwen2.5-coder-1.5b-instruct"
    # How the server takes a JSON Schema: "json_schema" (vLLM, OpenAI) or
    # "json_object_schema" (llama.cpp's {"type": "json_object", "schema": ...}).
    structured_output: Literal["json_schema", "json_object_schema"] = "json_object_schema"
    # How the agent calls tools: "native" sends `tools=` and reads the server's `tool_calls` (vLLM started with a
    # tool-call parser, OpenAI); "json_schema" asks for one JSON step under the structured output above (llama.cpp's
    # server, which would return native calls as text). The dataset records OpenAI tool_calls either way.
    tool_calling: Literal["native", "json_schema"] = "json_schema"
    # Per attempt. The local server answers one request at a time, so a call also waits for those queued before
    # it: with the 1.5B model on 2 cores each takes seconds to tens of seconds.
    timeout_s: float = 600.0
    max_tokens: int = 512
    temperature: float = 0.7
    # Sent as extra body fields; llama.cpp and vLLM both accept repetition controls.
    extra_body: dict[str, Any] = Field(default_factory=lambda: {"repeat_penalty": 1.15})


class LLMConfig(BaseModel):
    default: ModelEndpoint = Field(default_factory=ModelEndpoint)
    # Per-role overrides, e.g. a bigger judge: roles.judge.model = "Qwen/Qwen3-32B".
    roles: dict[str, ModelEndpoint] = Field(default_factory=dict)
    # Attempts for transient errors (429, 5xx, timeouts) and for answers that are not valid JSON.
    max_attempts: int = 4
    invalid_json_attempts: int = 2

    def for_role(self, role: str) -> ModelEndpoint:
        return self.roles.get(role, self.default)


class ServiceConfig(BaseModel):
    # Messages handled at once per process: LLM calls are I/O-bound, so keep the model server busy.
    concurrency: int = 8
    # Attempts for a transient error inside a handler before the message is dead-lettered.
    max_attempts: int = 4
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 10.0
    # Touched every few seconds by the consume loop when set; a liveness probe checks its age.
    heartbeat_file: str = ""
    # A trajectory older than this is dead-lettered as stuck (a seed's settings may set a shorter one).
    trajectory_deadline_s: float = 1800.0
    # How often sql-executor looks for trajectories past their deadline and for sandboxes left behind.
    sweep_interval_s: float = 10.0
    # Benchmarks: a file each service appends "<unix time> <topic> <ms from produce to handler start>" lines to.
    hop_log: str = ""


class TracingConfig(BaseModel):
    # OTLP/HTTP traces endpoint, e.g. http://jaeger-collector:4318/v1/traces. Empty: no export.
    otlp_endpoint: str = ""
    jaeger_ui_url: str = "http://127.0.0.1:16686"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TURNFORGE_", env_nested_delimiter="__", extra="ignore")

    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    postgres: PostgresConfig = Field(default_factory=PostgresConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    tracing: TracingConfig = Field(default_factory=TracingConfig)
    # Where `turnforge up` keeps its data, logs and pid files.
    state_dir: Path = Path(".turnforge")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)

    def topic(self, name: str) -> str:
        return self.kafka.topic_prefix + name

    def consumer_group(self, service: str) -> str:
        """The group a service consumes in: named after the topic prefix, so that consumers of other topics never
        share it. A group reused for another prefix handed one deployment's seeds to another's consumers, and on
        tansu a group whose members all left never assigns partitions of a new topic (a stalled run)."""
        return f"turnforge.{self.kafka.topic_prefix}{service}"


def load_settings(path: str | os.PathLike | None = None) -> Settings:
    """Settings from the YAML file (argument, else $TURNFORGE_CONFIG) overlaid by the environment.

    The same file may hold other sections (a run's `generation:`); settings ignore them."""
    path = path or os.environ.get("TURNFORGE_CONFIG")
    data: dict[str, Any] = {}
    if path:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    return Settings(**data)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
