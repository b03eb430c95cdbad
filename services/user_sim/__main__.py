from services.user_sim.service import main

main()
