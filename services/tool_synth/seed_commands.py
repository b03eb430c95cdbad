"""`turnforge tools --seed-tools FILE`: expand seed tools, predict output schemas, check types, measure."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from shared.config import Settings


def seed_toolset(settings: Settings, path: str, *, field: str = "", limit: int = 0, synthesizer: str = "both",
                 questions: int = 20, expand_questions: int = 0, seed: int = 0) -> dict:
    from services.schema_predictor.logic import enforce_type_consistency
    from services.schema_predictor.prediction import PredictionLog, agreement_with_truth, predict_output_schemas
    from services.tool_synth.seed_expansion import Expansion, expand_seed_tools
    from shared.llm import LLMClient
    from shared.seed_tools import load_seed_responses, load_seed_tools

    seeds = load_seed_tools(path, field=field, limit=limit)
    if not seeds:
        raise ValueError(f"no seed tools in {path}" + (f" with field {field!r}" if field else ""))
    domain = (field or Path(path).stem).split("/")[0]
    if synthesizer == "template":  # nothing to synthesise without a model: the seed tools as given
        expansion = Expansion(tools=list(seeds))
    else:
        expansion = expand_seed_tools(LLMClient(settings.llm, "tool_synth"), domain, seeds,
                                      questions=questions, expand_questions=expand_questions)
    log = PredictionLog()
    schemas = predict_output_schemas(LLMClient(settings.llm, "schema_predictor"), domain, expansion.tools, log)
    triples = [(t.name, json.loads(t.parameters_json or "{}"), s) for t, s in zip(expansion.tools, schemas)]
    repaired, conflicts = enforce_type_consistency(triples)
    seed_names = {t.name for t in seeds}
    tools = [{"name": name, "description": t.description, "parameters": params, "output_schema": output,
              "source": "seed" if t.name in seed_names else "proposed"}
             for t, (name, params, output) in zip(expansion.tools, repaired)]
    truth = load_seed_responses(path, field=field, limit=limit)
    predicted = {name: output for name, _, output in repaired}
    measures = {
        "seed_tools": len(seeds),
        "questions": len(expansion.questions),
        "questions_discarded": expansion.discarded_questions,
        "questions_expanded": min(len(expansion.questions), expand_questions) if expand_questions
        else len(expansion.questions),
        "proposed": expansion.proposed,
        "proposed_by_stage": expansion.proposed_by_stage,
        "added_by_stage": expansion.added_by_stage,
        "rejected": len(expansion.rejected),
        "rejected_by_reason": dict(Counter(_reason_head(r.reason) for r in expansion.rejected).most_common()),
        "merged_near_duplicates": len(expansion.merged),
        "tools": len(tools),
        "crud_mix": dict(Counter(_verb_class(t["name"]) for t in tools)),
        "llm_calls": expansion.llm_calls + log.calls,
        "llm_calls_failed": len(expansion.failed_calls) + len(log.failed),
        "output_shape_repaired": len(log.shape_repaired),
        "type_conflicts_repaired": [c.describe() for c in conflicts],
        "schema_vs_responses": agreement_with_truth(predicted, truth) if truth else None,
    }
    return {
        "domain": domain,
        "questions": expansion.questions,
        "tools": tools,
        "rejected": [{"name": r.name, "stage": r.stage, "reason": r.reason} for r in expansion.rejected],
        "merged": [{"proposed": a, "same_purpose_as": b} for a, b in expansion.merged],
        "failed_model_calls": expansion.failed_calls + [f"output schema of {n}" for n in log.failed],
        "measures": measures,
    }


def _reason_head(reason: str) -> str:
    return reason.split(":", 1)[0]


def _verb_class(name: str) -> str:
    from services.tool_synth.seed_expansion import purpose_key

    verb = purpose_key(name)[0]
    return {"get": "read", "search": "read", "create": "insert", "update": "update", "delete": "delete"}.get(verb,
                                                                                                          "other")
