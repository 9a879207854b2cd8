#!/usr/bin/env bash
# The broker's CPU time during one benchmark run, beside the run's figures.
#
#   scripts/broker-cpu.sh [rpc-bench arguments...]
#
# Runs the release `rpc-bench` with the arguments given (build it first:
# `cargo build --release -p rpc-examples --bin rpc-bench`) and prints, after
# its output, the CPU time the local RabbitMQ node (its `beam.smp` process,
# or the process `BROKER_PID` names) spent meanwhile, user and system.
# With `RPC_BENCH_ONE_SIDE=ours|raw|floor` the run measures one side alone,
# so the broker's time is that side's: divided by the scenario's calls, it
# is the broker's work per call (docs/benchmarks.md, *The two cores are the
# budget*). The broker must run on this host; its idle time (a few
# milliseconds a second) is counted too.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="${RPC_BENCH_BIN:-$here/target/release/rpc-bench}"
if [[ ! -x "$bench" ]]; then
    echo "broker-cpu: $bench not found; build it with: cargo build --release -p rpc-examples --bin rpc-bench" >&2
    exit 2
fi
pid="${BROKER_PID:-$(pgrep -o -f beam.smp || true)}"
if [[ -z "$pid" || ! -r "/proc/$pid/stat" ]]; then
    echo "broker-cpu: no local RabbitMQ node (beam.smp) found; set BROKER_PID" >&2
    exit 2
fi

# utime + stime, in clock ticks (fields 14 and 15 of /proc/PID/stat; the
# command name, field 2, has no spaces for beam.smp).
ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }

before="$(ticks)"
started="$(date +%s%N)"
"$bench" "$@"
ended="$(date +%s%N)"
after="$(ticks)"
hz="$(getconf CLK_TCK)"
echo "broker-cpu: the broker (pid $pid) spent $(( (after - before) * 1000 / hz )) ms of CPU in $(( (ended - started) / 1000000 )) ms of run"
