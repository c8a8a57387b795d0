"""Entry point: `python app.py "question"` asks the bundled index (the chat UI comes with the UI issue)."""

import sys

from qa.cli import main

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "ask", *sys.argv[1:]]
    main()
