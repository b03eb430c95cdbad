from services.user_sim.service import UserSimulator
from shared.runtime.bus import run_stage

run_stage(UserSimulator)
