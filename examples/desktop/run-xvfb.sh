#!/usr/bin/env bash
# Runs the desktop example unattended under Xvfb: it generates once from a fixed prompt,
# saves a screenshot of its window (egui's own screenshot, read back from the GPU) and
# closes. Fails unless tokens were generated and the screenshot was written.
#
#   examples/desktop/run-xvfb.sh [OUT.png]   (default: examples/desktop/target/desktop-xvfb.png)
#
# Needs Xvfb and the X11 libraries winit loads (xvfb libx11-xcb1 libxcursor1 libxi6
# libxkbcommon-x11-0 on Debian). WGPU_BACKEND defaults to vulkan (lavapipe
# without a GPU); FLASHCONV_DESKTOP_ARGS adds options (e.g. "--temperature 0").
set -euo pipefail
here=$(dirname "$0")
# OUT is relative to where the script is called from.
out=$(realpath -m "${1:-$here/target/desktop-xvfb.png}")
cd "$here"
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
unset WAYLAND_DISPLAY
# Without a runtime directory Mesa's Wayland probing prints errors (harmless).
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
    XDG_RUNTIME_DIR=$(mktemp -d)
    export XDG_RUNTIME_DIR
    runtime_dir_made=1
fi

cargo build --release --locked
rm -f "$out"

# -displayfd: Xvfb picks a free display number and writes it to fd 3 when ready.
display_file=$(mktemp)
Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3>"$display_file" 2>/dev/null &
xvfb_pid=$!
cleanup() {
    kill "$xvfb_pid" 2>/dev/null || true
    rm -f "$display_file"
    if [ -n "${runtime_dir_made:-}" ]; then rm -rf "$XDG_RUNTIME_DIR"; fi
}
trap cleanup EXIT
for _ in $(seq 100); do
    [ -s "$display_file" ] && break
    sleep 0.1
done
display=$(head -n 1 "$display_file")
if [ -z "$display" ]; then
    echo "Xvfb did not start" >&2
    exit 1
fi
export DISPLAY=":$display"
echo "Xvfb on $DISPLAY, WGPU_BACKEND=$WGPU_BACKEND"

start=$(date +%s)
# shellcheck disable=SC2086
timeout 600 ./target/release/flashconv-desktop \
    --auto-prompt "The compiler " --max-tokens 300 --temperature 0.7 --seed 1 \
    --screenshot "$out" --exit-after ${FLASHCONV_DESKTOP_ARGS:-}
test -s "$out"
echo "window open for $(($(date +%s) - start)) s; screenshot: $out"
