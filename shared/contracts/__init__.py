"""The protobuf contracts in one namespace, plus the topic names they travel on (declared in flow.py).

Code is generated from protos/turnforge/v1/*.proto by `make protos`; import messages from here.
"""
from __future__ import annotations

try:
    from protos.turnforge.v1 import chat_pb2, dead_letter_pb2, seed_pb2, task_pb2, tool_pb2, trajectory_pb2, verdict_pb2
except ImportError as e:  # pragma: no cover - only before the first build
    raise ImportError("protobuf code is not generated yet: run `make protos`") from e

from shared.contracts.flow import Topics  # noqa: E402 - after the check that says how to generate the code

SeedEvent = seed_pb2.SeedEvent
GenerationSettings = seed_pb2.GenerationSettings
DatabaseRef = seed_pb2.DatabaseRef
SeedTools = seed_pb2.SeedTools
SeedToolset = seed_pb2.SeedToolset
SeededTrajectory = seed_pb2.SeededTrajectory
StartState = seed_pb2.StartState
DifficultyMix = seed_pb2.DifficultyMix
ActionMix = seed_pb2.ActionMix
PipelineMode = seed_pb2.PipelineMode
ToolExecution = seed_pb2.ToolExecution
UserPersona = seed_pb2.UserPersona
ToolSynthesizer = seed_pb2.ToolSynthesizer
TaskWording = seed_pb2.TaskWording
AgentKind = seed_pb2.AgentKind
EvaluationSettings = seed_pb2.EvaluationSettings
EvaluationTasks = seed_pb2.EvaluationTasks
AlignmentTarget = seed_pb2.AlignmentTarget

Tool = tool_pb2.Tool
Toolset = tool_pb2.Toolset
SqlBinding = tool_pb2.SqlBinding
ToolEffect = tool_pb2.ToolEffect
EffectKind = tool_pb2.EffectKind
ToolRejection = tool_pb2.ToolRejection
ToolsetAlignment = tool_pb2.ToolsetAlignment

Task = task_pb2.Task
Rubric = task_pb2.Rubric
GoldenAction = task_pb2.GoldenAction
Subtask = task_pb2.Subtask
Difficulty = task_pb2.Difficulty
TaskLength = task_pb2.TaskLength

ChatMessage = chat_pb2.ChatMessage
ToolCall = chat_pb2.ToolCall
FunctionCall = chat_pb2.FunctionCall
ToolCallRequest = trajectory_pb2.ToolCallRequest
ToolCallResult = trajectory_pb2.ToolCallResult
TrajectoryState = trajectory_pb2.TrajectoryState
TrajectoryStatus = trajectory_pb2.TrajectoryStatus
Counters = trajectory_pb2.Counters

Verdict = verdict_pb2.Verdict
CheckResult = verdict_pb2.CheckResult
RubricJudgement = verdict_pb2.RubricJudgement
RubricCategory = verdict_pb2.RubricCategory

DeadLetter = dead_letter_pb2.DeadLetter

# The names code and reports use for an effect kind (the SQL guard's statement kinds are the same words).
EFFECT_KIND_OF_NAME = {"read": EffectKind.EFFECT_KIND_READ, "insert": EffectKind.EFFECT_KIND_INSERT,
                       "update": EffectKind.EFFECT_KIND_UPDATE, "delete": EffectKind.EFFECT_KIND_DELETE}
