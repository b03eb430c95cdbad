from services.validator.service import Validator
from shared.runtime.bus import run_stage

run_stage(Validator)
