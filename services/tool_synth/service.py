"""tool-synth: seed event -> toolset. SQL tools are synthesised from the domain schema and verified by executing them."""
from __future__ import annotations

import random

from opentelemetry import trace

from shared.evaluation.alignment import workload
from shared.evaluation.tool_selection import alignment_record, select_for_target
from shared.toolgen.toolset import (MAX_TOOLS, InvalidSeed, toolset_from_seed_tools, toolset_from_verifications,
                                    validate_seed)
from shared.toolgen.preparation import prepare_database_tools
from shared.toolgen.seed_expansion import expand_seed_tools
from shared.runtime.bus import Outgoing, Stage, consumes
from shared.runtime.config import Settings
from shared.contracts import SeedEvent, SeedToolset, ToolRejection, ToolSynthesizer, Toolset, Topics
from shared.runtime.llm import LLMClients
from shared.env.sandbox import SandboxManager, domain_schema_name
from shared.env.trajectory import seed_info


SYNTHESIZER_OF = {ToolSynthesizer.TOOL_SYNTHESIZER_UNSPECIFIED: "template",
                  ToolSynthesizer.TOOL_SYNTHESIZER_TEMPLATE: "template",
                  ToolSynthesizer.TOOL_SYNTHESIZER_LLM: "llm",
                  ToolSynthesizer.TOOL_SYNTHESIZER_BOTH: "both"}


class ToolSynth(Stage):
    name = "tool-synth"

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.sandboxes = SandboxManager(settings.postgres.dsn)
        self.llm = LLMClients(settings.llm)

    def close(self) -> None:
        self.sandboxes.close()
        self.llm.close()

    @consumes(Topics.SEEDS, SeedEvent, seed_info)
    def handle(self, seed: SeedEvent) -> list[Outgoing]:
        validate_seed(seed)
        span = trace.get_current_span()
        if seed.WhichOneof("source") == "evaluation":
            # Frozen tasks come with the tools they were made with: an agent is evaluated on exactly those.
            toolset = Toolset()
            toolset.CopyFrom(seed.evaluation.toolset)
            toolset.seed_id = seed.seed_id
        elif seed.WhichOneof("source") == "seed_tools":
            if seed.settings.expand_seed_tools:
                llm = self.llm.for_role("tool_synth", seed.settings.models)
                expansion = expand_seed_tools(llm, seed.domain, list(seed.seed_tools.tools))
                expanded = SeedEvent()
                expanded.CopyFrom(seed)
                del expanded.seed_tools.tools[:]
                expanded.seed_tools.tools.extend(expansion.tools)
                toolset = toolset_from_seed_tools(expanded)
                for r in expansion.rejected:
                    toolset.rejected.append(ToolRejection(tool_name=r.name, reason=f"{r.stage} spec: {r.reason}"))
                for dropped, kept in expansion.merged:
                    toolset.rejected.append(ToolRejection(tool_name=dropped, reason=f"merged: same purpose as {kept}"))
                span.set_attribute("turnforge.tools.proposed", expansion.proposed)
            else:
                toolset = toolset_from_seed_tools(seed)
        else:
            domain = seed.database.domain_database
            db_schema = self.sandboxes.domain_schema(domain)
            synthesizer = SYNTHESIZER_OF.get(seed.settings.tool_synthesizer, "template")
            llm = self.llm.for_role("tool_synth", seed.settings.models) if synthesizer != "template" else None
            rng = random.Random(f"{seed.domain}/{seed.settings.random_seed}")
            prepared = prepare_database_tools(self.sandboxes.connection(), domain_schema_name(domain), db_schema,
                                              synthesizer=synthesizer, llm=llm, rng=rng)
            target = seed.settings.align_to
            if target.statements:
                toolset = self.toolset_for_target(seed, prepared)
                span.set_attribute("turnforge.tools.kl_alignment_before", toolset.alignment.kl_alignment_before)
                span.set_attribute("turnforge.tools.kl_alignment_after", toolset.alignment.kl_alignment_after)
                seed = without_target_statements(seed)
            else:
                toolset = toolset_from_verifications(seed, prepared.verifications, prepared.kept)
            span.set_attribute("turnforge.tools.proposed", len(prepared.verifications))
            span.set_attribute("turnforge.tools.kept", len(toolset.tools))
        return [Outgoing(Topics.TOOLSETS_SYNTHESIZED, seed.seed_id, SeedToolset(seed=seed, toolset=toolset))]

    @staticmethod
    def toolset_for_target(seed: SeedEvent, prepared) -> Toolset:
        """The verified tools that align best with the seed's target workload (settings.align_to), recording the
        default selection's alignment beside the kept one's."""
        target = seed.settings.align_to
        counts = workload(target.statements, target.dialect or "sqlite").counts
        if not counts:
            raise InvalidSeed(f"settings.align_to: none of its {len(target.statements)} statements parses as "
                              f"{target.dialect or 'sqlite'} SQL")
        selection = select_for_target([v for v in prepared.verifications if v.ok], prepared.kept, counts,
                                      limit=MAX_TOOLS)
        toolset = toolset_from_verifications(seed, prepared.verifications, selection.tools)
        toolset.alignment.CopyFrom(alignment_record(selection, target.source, len(target.statements)))
        return toolset


def without_target_statements(seed: SeedEvent) -> SeedEvent:
    """The seed as it travels on: the target's statements are used up here, and every trajectory event copies the
    settings, so they are dropped (source and dialect stay; the toolset holds the figures)."""
    forwarded = SeedEvent()
    forwarded.CopyFrom(seed)
    del forwarded.settings.align_to.statements[:]
    return forwarded

