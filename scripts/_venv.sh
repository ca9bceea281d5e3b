# Sourced by scripts/test and scripts/demo: one virtualenv (.venv) with the workstation stack, made on first use.
# Re-installs only when a requirements file changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${EDGE_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
stamp="$VENV/.requirements.sha256"
want="$(cat "$ROOT/requirements-pi.txt" "$ROOT/requirements-tools.txt" "$ROOT/requirements-torch.txt" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$PY" ]; then
  python3 -m venv "$VENV"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$PY" -m pip install -q --upgrade pip
  "$PY" -m pip install -q -r "$ROOT/requirements-tools.txt"
  echo "$want" > "$stamp"
fi
