from services.schema_predictor.service import main

main()
