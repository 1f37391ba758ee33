#!/usr/bin/env bash
# Builds the web demo: the library for wasm32-unknown-unknown (wgpu's WebGPU backend),
# then wasm-bindgen --target web into web/pkg/ (git-ignored). Serve the repository root
# and open /web/ (see README.md, "Web demo").
#
# wasm-bindgen-cli must be the exact version of the wasm-bindgen crate in Cargo.lock (the
# generated JS and the wasm's custom section must match): it is installed with cargo
# when the one on PATH differs (about 2.5 minutes on two cores).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
out=web/pkg

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
fi

# The version of the wasm-bindgen crate that Cargo.lock pins.
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ -z "$want" ]; then
    echo "build.sh: no wasm-bindgen package in Cargo.lock" >&2
    exit 1
fi
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$have" != "$want" ]; then
    echo "build.sh: installing wasm-bindgen-cli $want (found: ${have:-none})" >&2
    # Not --locked: its lockfile pins a webpki-roots that the registry no longer serves.
    cargo install wasm-bindgen-cli --version "$want"
fi

cargo build --lib --profile "$profile" --target wasm32-unknown-unknown

target_dir=${CARGO_TARGET_DIR:-target}
wasm="$target_dir/wasm32-unknown-unknown/$profile/flashconv.wasm"
rm -rf "$out"
wasm-bindgen --target web --no-typescript --out-dir "$out" "$wasm"
echo "build.sh: $(du -h "$out/flashconv_bg.wasm" | cut -f1) $out/flashconv_bg.wasm" >&2
