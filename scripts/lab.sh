#!/usr/bin/env bash
# Runs one lab suite: `scripts/lab.sh 2b` runs test/lab2b-*.
set -euo pipefail
cd "$(dirname "$0")/.."
lab="${1:?usage: scripts/lab.sh <1|2a|2b|2c|3a|3b|3c|4>}"
dirs=(test/lab"${lab}"-*)
[[ -d "${dirs[0]}" ]] || { echo "no suite for lab ${lab} (looked for test/lab${lab}-*)" >&2; exit 2; }
exec npx vitest run "${dirs[@]}"
