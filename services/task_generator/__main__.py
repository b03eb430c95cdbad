from services.task_generator.service import TaskGenerator
from shared.runtime.bus import run_stage

run_stage(TaskGenerator)
