from redpajama.cli.app import main

main()
