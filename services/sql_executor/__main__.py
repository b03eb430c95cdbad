from services.sql_executor.service import main

main()
