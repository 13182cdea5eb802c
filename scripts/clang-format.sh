#!/usr/bin/env bash
# clang-format over native/ (the style is .clang-format's). --check: say which files differ, exit 1.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null; then
  echo "clang-format is not installed: apt-get install -y clang-format" >&2
  exit 2
fi
mapfile -t files < <(git ls-files 'native/*.cc' 'native/*.h')
if [ "${1:-}" = "--check" ]; then
  clang-format --dry-run -Werror "${files[@]}"
else
  clang-format -i "${files[@]}"
fi
