from messaging.cli import main

main()
