"""Entry point.

    python app.py [--host H] [--port P] [--index-dir D]   # the chat UI + REST API (same as `qa serve`)
    python app.py "question" [--json ...]                  # one answer on the terminal (same as `qa ask`)
"""

import sys

from qa.app.cli import main

SERVE_OPTIONS = {"--host", "--port", "--index-dir", "--embeddings", "--config", "--llm"}

if __name__ == "__main__":
    args = sys.argv[1:]
    serving = not args or args[0].split("=", 1)[0] in SERVE_OPTIONS or args[0] in ("serve", "--help")
    if args and args[0] == "serve":
        args = args[1:]
    sys.argv = [sys.argv[0], "serve" if serving else "ask", *args]
    main()
