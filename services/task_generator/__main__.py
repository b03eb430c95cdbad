from services.task_generator.service import main

main()
