from services.tool_synth.service import ToolSynth
from shared.runtime.bus import run_stage

run_stage(ToolSynth)
