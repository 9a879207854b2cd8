#!/usr/bin/env bash
# Fuzzes rpc-core: its decoders (both codecs: requests, replies and
# notifications), and the whole path of a delivery through a server
# (server_path), with cargo-fuzz (libFuzzer + AddressSanitizer), each
# target for a set time.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Default: 60 seconds for each of request_msgpack, request_oslo,
# reply_msgpack, reply_oslo, notification_msgpack, notification_oslo and
# server_path. The stable toolchain runs them with RUSTC_BOOTSTRAP=1.
# Corpora grow in fuzz/corpus/<target> (seeded from fuzz/seeds/<target>);
# a crash is saved in fuzz/artifacts/<target>/ and fails the script: add
# its input to `hostile_inputs` in rpc-core/tests/codec_properties.rs once
# fixed.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-60}"
shift || true
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(request_msgpack request_oslo reply_msgpack reply_oslo notification_msgpack notification_oslo server_path)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    cp -n "seeds/$target"/* "corpus/$target/" 2>/dev/null || true
    echo "==> fuzzing $target for ${seconds}s"
    # Inputs up to 64 KiB; each run under 10 s; both codecs cap nesting.
    cargo fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=65536 -timeout=10 -print_final_stats=1
done
echo "==> no crash in ${#targets[@]} targets (${seconds}s each)"
