#!/usr/bin/env bash
# Kept so `bash scripts/demo.sh` still works: the demo is scripts/demo.py.
exec python3 "$(dirname "$0")/demo.py" "$@"
