"""The shipped run configurations load, and say what they are for."""
from __future__ import annotations

from shared.ops import local_model, stack
from shared.run.runner import load_run_config
from shared.runtime.config import load_settings


def test_default_config_runs_the_local_1_5b_for_every_role():
    settings = load_settings("configs/default.yaml")
    assert stack.model_servers(settings) == [stack.ModelServer("model", 18080, "qwen2.5-coder-1.5b-instruct")]
    assert settings.llm.default.structured_output == "json_object_schema"


def test_paper_config_asks_a_capable_endpoint_for_long_dialogues():
    settings, run = load_settings("configs/paper.yaml"), load_run_config("configs/paper.yaml")
    assert (run.tasks_per_trajectory, run.tools_per_trajectory, run.max_user_turns) == (3, 0, 20)
    assert settings.llm.default.structured_output == "json_schema"
    assert settings.llm.default.model not in local_model.MODELS  # never the embedded llama-cpp-python
