#!/usr/bin/env bash
# Renders TensorBoard's CUSTOM SCALARS page for a log directory in headless
# Chromium (Debian's `chromium` package) and saves it as a PNG.
#
#   docs/screenshot_dashboard.sh build/demo/train docs/pruning_dashboard.png
set -euo pipefail
logdir=${1:?usage: $0 LOGDIR OUT.png}
out=${2:?usage: $0 LOGDIR OUT.png}
port=${PORT:-6123}
here=$(cd "$(dirname "$0")/.." && pwd)
command -v chromium >/dev/null || {
  echo "$0: chromium is missing; install it (Debian: apt-get install chromium)" >&2; exit 2; }

"$here/.venv/bin/tensorboard" --logdir "$logdir" --port "$port" --host localhost \
  >/dev/null 2>&1 &
server=$!
profile=$(mktemp -d)
trap 'kill $server 2>/dev/null; rm -rf "$profile"' EXIT
for _ in $(seq 60); do
  curl -sf "http://localhost:$port/data/plugins_listing" >/dev/null && break
  sleep 1
done
tmp="$(dirname "$out")/.$(basename "$out").tmp.png"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars --window-size=1300,780 \
  --virtual-time-budget=20000 --screenshot="$tmp" \
  "http://localhost:$port/?darkMode=false#custom_scalars" >/dev/null 2>&1
mv "$tmp" "$out"
echo "Wrote $out"
