"""tool-synth: seed event -> toolset. SQL tools are synthesised from the domain schema and verified by executing them."""
from __future__ import annotations

import random

from opentelemetry import trace

from services.tool_synth.logic import toolset_from_seed_tools, toolset_from_verifications, validate_seed
from services.tool_synth.templates import synthesize_template_tools
from services.tool_synth.verify import verify_tools
from shared.bus import Outgoing, Route, run_service
from shared.config import Settings, get_settings
from shared.contracts import SeedEvent, SeedToolset, Topics
from shared.sandbox import SandboxManager, domain_schema_name
from shared.trajectory import seed_info


class ToolSynth:
    def __init__(self, settings: Settings):
        self.sandboxes = SandboxManager(settings.postgres.dsn)

    def handle(self, seed: SeedEvent) -> list[Outgoing]:
        validate_seed(seed)
        if seed.WhichOneof("source") == "seed_tools":
            toolset = toolset_from_seed_tools(seed)
        else:
            domain = seed.database.domain_database
            db_schema = self.sandboxes.domain_schema(domain)
            candidates = synthesize_template_tools(db_schema)
            rng = random.Random(f"{seed.domain}/{seed.settings.random_seed}")
            conn = self.sandboxes.connection()
            verifications = verify_tools(conn, domain_schema_name(domain), db_schema, candidates, rng)
            toolset = toolset_from_verifications(seed, verifications)
            span = trace.get_current_span()
            span.set_attribute("turnforge.tools.proposed", len(candidates))
            span.set_attribute("turnforge.tools.kept", len(toolset.tools))
        return [Outgoing(Topics.TOOLSETS_SYNTHESIZED, seed.seed_id, SeedToolset(seed=seed, toolset=toolset))]


def routes(settings: Settings) -> list[Route]:
    synth = ToolSynth(settings)
    return [Route(Topics.SEEDS, SeedEvent, synth.handle, seed_info)]


def main() -> None:
    settings = get_settings()
    run_service("tool-synth", routes(settings), settings)
