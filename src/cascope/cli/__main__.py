from cascope.cli import main

main()
