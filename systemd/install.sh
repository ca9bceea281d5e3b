#!/bin/sh
# Install edge-explainer as a systemd service on a Raspberry Pi (Raspberry Pi OS Bookworm), from this checkout:
#   sudo systemd/install.sh            # install or update, enable and start
#   sudo systemd/install.sh --no-start # install and enable only
# It creates the venv $PREFIX/.venv (default /opt/edge-explainer) with --system-site-packages (picamera2 comes from
# apt) and pip-installs this checkout into it with requirements-pi.txt's pins (the edge-explainer command, the demo
# bundle and samples inside the package), copies models/ and docs/ to $PREFIX, creates the unprivileged user
# edge-explainer in group video, puts the example config at /etc/edge-explainer/config.toml unless one exists and a
# random browser-view token in /etc/edge-explainer/http-token unless one exists (both 0640 root:edge-explainer), and
# enables the unit, which runs $PREFIX/.venv/bin/edge-explainer.
set -eu

PREFIX=${PREFIX:-/opt/edge-explainer}
START=yes
[ "${1:-}" = "--no-start" ] && START=no
SRC=$(cd "$(dirname "$0")/.." && pwd)

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo $0)" >&2
    exit 1
fi
if [ "$PREFIX" != /opt/edge-explainer ]; then
    echo "install.sh: note: the unit expects /opt/edge-explainer; edit ExecStart and WorkingDirectory for $PREFIX" >&2
fi

if ! id edge-explainer >/dev/null 2>&1; then
    useradd --system --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin \
        --user-group --groups video edge-explainer
fi

mkdir -p "$PREFIX"
# models/ for the config's [model] path and your own bundles, docs/ for the unit's Documentation=. The code is no longer
# copied: a copy left by an older install.sh is removed, so that nothing imports it instead of the installed package.
rm -rf "${PREFIX:?}/edge" "${PREFIX:?}/requirements-pi.txt"
for part in models docs; do
    if [ -e "$SRC/$part" ]; then
        rm -rf "${PREFIX:?}/$part"
        cp -r "$SRC/$part" "$PREFIX/$part"
    fi
done
if [ ! -x "$PREFIX/.venv/bin/python" ]; then
    python3 -m venv --system-site-packages "$PREFIX/.venv"
fi
"$PREFIX/.venv/bin/pip" install --quiet --upgrade pip
"$PREFIX/.venv/bin/pip" install --quiet -r "$SRC/requirements-pi.txt" "$SRC"
chown -R root:root "$PREFIX"
chmod -R go-w "$PREFIX"

# config.toml and http-token (the browser view's token): 0640 root:edge-explainer, never world-readable.
sh "$SRC/systemd/install-etc.sh" "$SRC/systemd/config.toml" /etc/edge-explainer edge-explainer
install -m 0644 "$SRC/systemd/edge-explainer.service" /etc/systemd/system/edge-explainer.service

# Fail here, with the reason, rather than in a restart loop.
# A fresh private folder (mktemp -d): a fixed /tmp name could be pre-created by another local user.
cd "$PREFIX"
check_dir=$(mktemp -d)
chown edge-explainer "$check_dir"
runuser -u edge-explainer -- "$PREFIX/.venv/bin/edge-explainer" run --config /etc/edge-explainer/config.toml \
    --check-config --log-dir "$check_dir/log" >/dev/null || { rm -rf "$check_dir"; exit 1; }
rm -rf "$check_dir"

systemctl daemon-reload
if [ "$START" = yes ]; then
    systemctl enable --now edge-explainer.service
    echo "started; follow it with: journalctl -u edge-explainer -f"
    echo "browser view: ssh -L 8080:127.0.0.1:8080 to this Pi, then open http://127.0.0.1:8080/?token=TOKEN once,"
    echo "  TOKEN being the line in /etc/edge-explainer/http-token (sudo cat it)"
else
    systemctl enable edge-explainer.service
fi
