#!/usr/bin/env bash
# Render the HTML part of a digest to docs/digest.png with headless Chromium (Debian's
# `chromium` package; Arabic needs a font with Arabic glyphs, e.g. fonts-dejavu-core or
# fonts-noto-core). Not run by the tests; `make screenshot` calls it.
#
# Usage: docs/make_screenshot.sh [FILE.eml]
#   Without FILE, runs `veille demo` (offline replay) and uses demo/digest.eml.
# Env:   VEILLE_BIN  folder with the venv's python and veille (default .venv/bin)
#        OUT         the image (default docs/digest.png)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bin="${VEILLE_BIN:-$root/.venv/bin}"
out="${OUT:-$root/docs/digest.png}"

if ! command -v chromium >/dev/null 2>&1; then
    echo "make_screenshot: chromium not found (Debian: apt-get install chromium)" >&2
    exit 1
fi

eml="${1:-}"
if [ -z "$eml" ]; then
    "$bin/veille" demo --dir "$root/demo"
    eml="$root/demo/digest.eml"
fi
if [ ! -f "$eml" ]; then
    echo "make_screenshot: $eml: no such file" >&2
    exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$bin/python" - "$eml" "$work/digest.html" <<'PY'
import email
import email.policy
import sys

with open(sys.argv[1], "rb") as fh:
    msg = email.message_from_binary_file(fh, policy=email.policy.default)
part = msg.get_body(preferencelist=("html",))
if part is None:
    sys.exit(f"make_screenshot: {sys.argv[1]}: the message has no HTML part")
with open(sys.argv[2], "w", encoding="utf-8") as fh:
    fh.write(part.get_content())
PY

mkdir -p "$(dirname "$out")"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$(mktemp -d -p "$work")" \
    --screenshot="$out" --window-size=900,1400 "file://$work/digest.html" 2>"$work/chromium.log" || {
    echo "make_screenshot: chromium failed:" >&2
    tail -n 5 "$work/chromium.log" >&2
    exit 1
}
test -s "$out" || { echo "make_screenshot: chromium wrote no image" >&2; exit 1; }
echo "screenshot: $out (from $eml)"
