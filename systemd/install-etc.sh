#!/bin/sh
# The service's files under /etc, readable by root and the service's group only (never world-readable):
#   install-etc.sh EXAMPLE_CONFIG ETC_DIR GROUP
# installs EXAMPLE_CONFIG as ETC_DIR/config.toml unless one exists, creates ETC_DIR/http-token (the browser view's
# access token, [http] token_file) with a random token unless one exists, and sets both to 0640 root:GROUP (an
# existing config installed 0644 by an older install.sh is tightened too). Called by install.sh.
set -eu
example=$1
etc=$2
group=$3

install -d -m 0755 "$etc"
if [ ! -e "$etc/config.toml" ]; then
    install -m 0640 "$example" "$etc/config.toml"
fi
if [ ! -e "$etc/http-token" ]; then
    # 24 random bytes as URL-safe base64 without padding: 32 characters that need no encoding in ?token=
    (umask 077 && head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' > "$etc/http-token.new" &&
        echo >> "$etc/http-token.new" && mv "$etc/http-token.new" "$etc/http-token")
fi
for file in "$etc/config.toml" "$etc/http-token"; do
    chown "root:$group" "$file" 2>/dev/null || chgrp "$group" "$file"
    chmod 0640 "$file"
done
