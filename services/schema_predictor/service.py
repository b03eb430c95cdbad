"""schema-predictor: gives every tool an output JSON Schema and makes shared fields typed the same across tools.

SQL tools: the schema comes from the executed statement's result columns and their PostgreSQL types (no guessing).
Tools without a database: the model predicts the schema, one tool after another in one conversation, so it sees what
it already decided; the mechanical consistency pass then repairs whatever it still got wrong.
"""
from __future__ import annotations

import json

from opentelemetry import trace
from psycopg import sql as pgsql

from shared.toolgen.type_repair import enforce_type_consistency, field_entity, sql_field_entity
from shared.toolgen.output_prediction import PredictionLog, predict_output_schemas
from shared.runtime.bus import Outgoing, Stage, consumes
from shared.runtime.config import Settings
from shared.contracts import SeedToolset, ToolRejection, Topics
from shared.runtime.llm import LLMClients
from shared.env.output_schema import json_schema_for_result
from shared.env.sandbox import SandboxManager, domain_schema_name
from shared.env.sql_guard import check_statement, to_driver_sql
from shared.env.tool_spec import tool_parameters
from shared.env.trajectory import seed_toolset_info

class SchemaPredictor(Stage):
    name = "schema-predictor"

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.llm = LLMClients(settings.llm)
        self.sandboxes = SandboxManager(settings.postgres.dsn)

    def close(self) -> None:
        self.sandboxes.close()
        self.llm.close()

    def result_columns(self, domain: str, statement: str, sample_arguments: dict) -> list[tuple[str, str]]:
        """Execute in the domain schema inside a transaction that is always rolled back."""
        db_schema = self.sandboxes.domain_schema(domain)
        guarded = check_statement(statement, db_schema.table_names)
        conn = self.sandboxes.connection()
        with conn.transaction(force_rollback=True):
            conn.execute(pgsql.SQL("SET LOCAL search_path TO {}").format(pgsql.Identifier(domain_schema_name(domain))))
            cur = conn.execute(to_driver_sql(guarded), {p: sample_arguments.get(p) for p in guarded.parameters})
            oids = [d.type_code for d in cur.description or []]
            names = {oid: name for oid, name in conn.execute(
                "SELECT oid, typname FROM pg_type WHERE oid = ANY(%s)", (oids,)).fetchall()}
            return [(d.name, names.get(d.type_code, "text")) for d in cur.description or []]

    @consumes(Topics.TOOLSETS_SYNTHESIZED, SeedToolset, seed_toolset_info)
    def handle(self, prepared: SeedToolset) -> list[Outgoing]:
        toolset = prepared.toolset
        schemas: list[dict | None] = []
        for tool in toolset.tools:
            if tool.HasField("sql") and tool.output_schema_json:
                # tool-synth derived it from the verified execution (result columns and PostgreSQL types)
                schemas.append(json.loads(tool.output_schema_json))
            elif tool.HasField("sql"):
                columns = self.result_columns(toolset.domain_database, tool.sql.statement,
                                              json.loads(tool.sql.sample_arguments_json or "{}"))
                schemas.append(json_schema_for_result(columns, single_row=tool.effect.single_row))
            else:
                schemas.append(None)
        simulated = [t for t, s in zip(toolset.tools, schemas) if s is None]
        prediction_log = PredictionLog()
        if simulated:
            llm = self.llm.for_role("schema_predictor", prepared.seed.settings.models)
            predicted = iter(predict_output_schemas(llm, prepared.seed.domain, simulated, prediction_log))
            schemas = [s if s is not None else next(predicted) for s in schemas]
        columns_of = {t.name: (dict(t.sql.parameter_columns), dict(t.sql.result_columns))
                      for t in toolset.tools if t.HasField("sql")}
        entity = sql_field_entity(columns_of) if columns_of else field_entity
        repaired, conflicts = enforce_type_consistency(
            [(t.name, tool_parameters(t), s) for t, s in zip(toolset.tools, schemas)], entity)
        for tool, (_, params, output) in zip(toolset.tools, repaired):
            tool.parameters_json = json.dumps(params)
            tool.output_schema_json = json.dumps(output)
        for c in conflicts:
            toolset.rejected.append(ToolRejection(tool_name=c.tool, reason="type conflict repaired: " + c.describe()))
        for name in prediction_log.failed:
            toolset.rejected.append(ToolRejection(tool_name=name, reason="output schema not predicted: no usable "
                                                                          "model answer; empty record schema used"))
        span = trace.get_current_span()
        span.set_attribute("turnforge.schema.conflicts_repaired", len(conflicts))
        span.set_attribute("turnforge.schema.shapes_repaired", len(prediction_log.shape_repaired))
        return [Outgoing(Topics.TOOLSETS_READY, prepared.seed.seed_id, prepared)]

