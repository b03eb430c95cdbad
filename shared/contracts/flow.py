"""The flow of work as one table: every topic with its key, its message, who produces it and who consumes it.

The README's "Topics" table, the chart (its topic Job creates Topics.ALL, its scaling follows each service's
topics) and `turnforge cluster status` follow this table; tests/test_flow.py holds them to it.
"""
from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message

from protos.turnforge.v1 import dead_letter_pb2, seed_pb2, trajectory_pb2, verdict_pb2

# The services, each one process kind with its own consumer group ("turnforge.<name>").
TOOL_SYNTH, SCHEMA_PREDICTOR, TASK_GENERATOR = "tool-synth", "schema-predictor", "task-generator"
USER_SIM, AGENT, SQL_EXECUTOR, VALIDATOR = "user-sim", "agent", "sql-executor", "validator"
SERVICES = (TOOL_SYNTH, SCHEMA_PREDICTOR, TASK_GENERATOR, USER_SIM, AGENT, SQL_EXECUTOR, VALIDATOR)
# Commands that take part in the flow without being a service.
RUN = "turnforge run"
PRODUCE_SEED = "produce-seed"
COMMANDS = (RUN, PRODUCE_SEED)


class Topics:
    """Logical topic names; the configured prefix (default "tf.") is put in front of each."""

    SEEDS = "seeds"
    TOOLSETS_SYNTHESIZED = "toolsets.synthesized"
    TOOLSETS_READY = "toolsets.ready"
    TRAJECTORIES_SEEDED = "trajectories.seeded"
    TURNS_USER = "turns.user"
    TURNS_AGENT = "turns.agent"
    TOOL_CALLS = "tool.calls"
    TRAJECTORIES_COMPLETE = "trajectories.complete"
    ACCEPTED = "trajectories.accepted"
    REJECTED = "trajectories.rejected"
    DEAD_LETTER = "deadletter"

    ALL: tuple[str, ...]  # every topic, in the order of FLOW (set below it)


@dataclass(frozen=True)
class Topic:
    name: str  # logical, without the prefix
    key: str  # what the record key is
    message: type[Message]
    producers: tuple[str, ...]  # services and commands
    consumers: tuple[str, ...]
    # A trajectory state here carries its toolset as a digest, not whole (shared/runtime/toolsets.py): the toolset is
    # fixed once planned and was most of every hop's bytes. Outcomes carry it whole: they leave the pipeline.
    toolset_by_reference: bool = False


SEED_ID, TRAJECTORY_ID = "seed id", "trajectory id"
STATE, VERDICT = trajectory_pb2.TrajectoryState, verdict_pb2.Verdict

FLOW = (
    Topic(Topics.SEEDS, SEED_ID, seed_pb2.SeedEvent, (RUN, PRODUCE_SEED), (TOOL_SYNTH,)),
    Topic(Topics.TOOLSETS_SYNTHESIZED, SEED_ID, seed_pb2.SeedToolset, (TOOL_SYNTH,), (SCHEMA_PREDICTOR,)),
    Topic(Topics.TOOLSETS_READY, SEED_ID, seed_pb2.SeedToolset, (SCHEMA_PREDICTOR,), (TASK_GENERATOR,)),
    # The seed's fan-out: one small message per trajectory, so any task-generator replica can plan any of them.
    Topic(Topics.TRAJECTORIES_SEEDED, TRAJECTORY_ID, seed_pb2.SeededTrajectory, (TASK_GENERATOR,), (TASK_GENERATOR,)),
    Topic(Topics.TURNS_USER, TRAJECTORY_ID, STATE, (TASK_GENERATOR, AGENT), (USER_SIM,), toolset_by_reference=True),
    Topic(Topics.TURNS_AGENT, TRAJECTORY_ID, STATE, (USER_SIM, SQL_EXECUTOR), (AGENT,), toolset_by_reference=True),
    Topic(Topics.TOOL_CALLS, TRAJECTORY_ID, STATE, (AGENT,), (SQL_EXECUTOR,), toolset_by_reference=True),
    Topic(Topics.TRAJECTORIES_COMPLETE, TRAJECTORY_ID, STATE, (USER_SIM,), (VALIDATOR,), toolset_by_reference=True),
    # The runner collects outcomes; the executor drops a finished trajectory's sandbox.
    Topic(Topics.ACCEPTED, TRAJECTORY_ID, VERDICT, (VALIDATOR,), (RUN, SQL_EXECUTOR)),
    Topic(Topics.REJECTED, TRAJECTORY_ID, VERDICT, (VALIDATOR,), (RUN, SQL_EXECUTOR)),
    Topic(Topics.DEAD_LETTER, "the failed message's key", dead_letter_pb2.DeadLetter, SERVICES, (RUN, SQL_EXECUTOR)),
)

Topics.ALL = tuple(topic.name for topic in FLOW)
TOOLSET_BY_REFERENCE = frozenset(topic.name for topic in FLOW if topic.toolset_by_reference)


def consumed_by(actor: str) -> tuple[str, ...]:
    """The topics a service (hyphenated name) or command consumes, in flow order."""
    return tuple(topic.name for topic in FLOW if actor in topic.consumers)


def produced_by(actor: str) -> tuple[str, ...]:
    """The topics a service (hyphenated name) or command produces, in flow order."""
    return tuple(topic.name for topic in FLOW if actor in topic.producers)
