#!/usr/bin/env bash
# First command of the README: set up, index the bundled articles, ask the example question.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ANONYMIZED_TELEMETRY=False
.venv/bin/qa ingest data/articles
echo
echo "==> qa ask \"What did Le Cong Thanh recommend on climate diplomacy?\""
.venv/bin/qa ask "What did Le Cong Thanh recommend on climate diplomacy?"
echo
echo "==> qa ask \"Thứ trưởng Lê Công Thành đề xuất gì về ngoại giao khí hậu?\""
.venv/bin/qa ask "Thứ trưởng Lê Công Thành đề xuất gì về ngoại giao khí hậu?"
echo
echo "Ask your own: .venv/bin/qa ask \"...\"   (add --json for the full result)"
