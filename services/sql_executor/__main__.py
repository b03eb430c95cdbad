from services.sql_executor.service import SqlExecutor
from shared.runtime.bus import run_stage

run_stage(SqlExecutor)
