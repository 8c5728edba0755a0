from pawhub.cli import main

main()
