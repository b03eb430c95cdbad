from services.tool_synth.service import main

main()
