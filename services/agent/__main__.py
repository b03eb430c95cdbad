from services.agent.service import Agent
from shared.runtime.bus import run_stage

run_stage(Agent)
