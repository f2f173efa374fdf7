from dlspec.cli import main

main()
