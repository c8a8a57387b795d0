#!/usr/bin/env bash
# First command of the README: set up, index the bundled articles (data/articles), then start
# the chat UI + REST API and print its URL. Extra arguments go to `qa serve` (e.g. --host 0.0.0.0 --port 8080).
# QA_RUN_ASK_ONLY=1: ask the example question (English and Vietnamese) on the terminal and exit instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ANONYMIZED_TELEMETRY=False GRADIO_ANALYTICS_ENABLED=False
.venv/bin/qa ingest data/articles
if [ "${QA_RUN_ASK_ONLY:-0}" != "0" ]; then
  echo
  echo "==> qa ask \"What did Le Cong Thanh recommend on climate diplomacy?\""
  .venv/bin/qa ask "What did Le Cong Thanh recommend on climate diplomacy?"
  echo
  echo "==> qa ask \"Thứ trưởng Lê Công Thành đề xuất gì về ngoại giao khí hậu?\""
  .venv/bin/qa ask "Thứ trưởng Lê Công Thành đề xuất gì về ngoại giao khí hậu?"
  echo
  echo "Ask your own: .venv/bin/qa ask \"...\"   (add --json for the full result)"
  exit 0
fi
echo
echo "==> starting the chat UI and the API (Ctrl+C to stop)"
exec .venv/bin/qa serve "$@"
