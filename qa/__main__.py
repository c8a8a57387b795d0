from qa.app.cli import main

main()
