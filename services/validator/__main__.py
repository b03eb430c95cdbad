from services.validator.service import main

main()
