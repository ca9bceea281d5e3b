# Sourced by scripts/demo, scripts/test, scripts/train-demo and scripts/mutation: make_venv makes a virtualenv on first
# use and re-installs only when its requirements file (or one it includes) changed since the last install.
#   make_venv DIR REQUIREMENTS "what it holds, roughly how big"    sets PY to the venv's python
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

make_venv() {
  local venv="$1" requirements="$2" what="$3"
  PY="$venv/bin/python"
  local stamp="$venv/.requirements.sha256" want
  # requirements-tools.txt includes the other two (-r): a change to any of them re-installs the workstation's venv
  local hashed=("$ROOT/requirements-pi.txt")
  [ "$(basename "$requirements")" = requirements-pi.txt ] || hashed+=("$ROOT/requirements-tools.txt" "$ROOT/requirements-torch.txt")
  want="$(cat "${hashed[@]}" | sha256sum | cut -d' ' -f1)"
  if [ -x "$PY" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return
  fi
  echo "installing $what into ${venv#"$ROOT"/}/ (once; again only when $(basename "$requirements") changes)" >&2
  [ -x "$PY" ] || python3 -m venv "$venv"
  "$PY" -m pip install -q --disable-pip-version-check -r "$requirements"
  echo "$want" > "$stamp"
}

# The device's stack, as a Pi installs it: numpy, the TFLite runtime, OpenCV (headless), paho-mqtt.
device_venv() {
  make_venv "${EDGE_DEMO_VENV:-$ROOT/.venv-demo}" "$ROOT/requirements-pi.txt" \
    "the device stack (requirements-pi.txt: numpy, TFLite runtime, OpenCV headless, paho-mqtt; ~250 MB)"
}

# The workstation's stack: the device's, TensorFlow, PyTorch + ONNX (the export front ends), the test tools.
workstation_venv() {
  make_venv "${EDGE_VENV:-$ROOT/.venv}" "$ROOT/requirements-tools.txt" \
    "the workstation stack (requirements-tools.txt: TensorFlow, PyTorch with CUDA libraries, ONNX, test tools; ~9 GB, several GB to download)"
}
