from services.schema_predictor.service import SchemaPredictor
from shared.runtime.bus import run_stage

run_stage(SchemaPredictor)
