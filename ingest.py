"""`python ingest.py PATH...` is `qa ingest PATH...`."""

import sys

from qa.app.cli import main

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "ingest", *sys.argv[1:]]
    main()
