from services.agent.service import main

main()
