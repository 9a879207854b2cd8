#!/usr/bin/env bash
# The whole test suite, as the README gives it and CI runs it (.ci/run).
#
# Brings up what the tests need (the local RabbitMQ, and a Python virtualenv
# with the pinned oslo.messaging for the interop tests), then runs formatting
# and lint checks and every test of the workspace: unit tests, doctests, the
# macro UI tests, the transport conformance suite on memory and on RabbitMQ,
# the fault, delivery and private-broker (restart, TLS, cluster) tests, the
# conformance suite on a RabbitMQ 4 node, the interop tests against Python
# oslo.messaging, and the examples' tests.
#
# Broker tests use RPC_TEST_AMQP_URL (default amqp://guest:guest@127.0.0.1:5672/%2f);
# they never skip: without a broker they fail.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

export RPC_TEST_AMQP_URL="${RPC_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"

# host and port of the first broker in the URL
broker_address() {
    local rest="${RPC_TEST_AMQP_URL#*://}"
    rest="${rest%%/*}"
    rest="${rest%%,*}"
    rest="${rest##*@}"
    local host="${rest%%:*}" port="5672"
    [[ "$rest" == *:* ]] && port="${rest##*:}"
    echo "$host" "$port"
}

# Whether an AMQP broker answers at host:port: it replies to the protocol
# header with a method frame (first byte 1). An open port alone proves
# nothing (a proxy may accept any connection).
amqp_answers() {
    local first
    first=$(timeout 5 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "AMQP\x00\x00\x09\x01" >&3
        head -c 1 <&3 | od -An -tx1' "$1" "$2" 2>/dev/null) || return 1
    [[ "${first// /}" == "01" ]]
}

wait_for_broker() {
    local host=$1 port=$2 seconds=$3
    for _ in $(seq "$seconds"); do
        amqp_answers "$host" "$port" && return 0
        sleep 1
    done
    return 1
}

# Installs the Debian package $2 when the command $1 is missing.
ensure_command() {
    command -v "$1" >/dev/null 2>&1 && return 0
    install_package "$1" "$2"
}

# Installs the Debian package $2, which provides $1, or says how to.
install_package() {
    if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
        echo "installing $2 with apt-get"
        # A fresh image has no package lists yet: read them, then try again.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null; }
    else
        echo "error: $1 is not installed and cannot be installed here." >&2
        echo "Install it (Debian/Ubuntu: sudo apt-get install $2), then run this script again." >&2
        exit 1
    fi
}

ensure_rabbitmq() {
    read -r host port < <(broker_address)
    if amqp_answers "$host" "$port"; then
        echo "RabbitMQ answers at $host:$port"
        return
    fi
    if [[ "$host" != "127.0.0.1" && "$host" != "localhost" ]]; then
        echo "error: no broker answers at $host:$port (RPC_TEST_AMQP_URL); start it, or unset RPC_TEST_AMQP_URL to use a local RabbitMQ" >&2
        exit 1
    fi
    ensure_command rabbitmq-server rabbitmq-server
    echo "starting RabbitMQ (rabbitmq-server -detached)"
    rabbitmq-server -detached >/dev/null 2>&1 || true
    if ! wait_for_broker "$host" "$port" 90; then
        echo "error: RabbitMQ did not start listening on $host:$port within 90 s; see its logs (/var/log/rabbitmq)" >&2
        exit 1
    fi
    command -v rabbitmqctl >/dev/null 2>&1 && rabbitmqctl await_startup >/dev/null 2>&1 || true
    echo "RabbitMQ answers at $host:$port"
}

step "formatting"
cargo fmt --all --check

step "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The workspace enables rpc-core's `opentelemetry` feature (the tests use
# it): check rpc-core without it too.
cargo clippy -p rpc-core --all-targets --locked -- -D warnings

step "documentation links"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "broker"
ensure_rabbitmq
# Restart and TLS tests run private RabbitMQ nodes, with certificates made by openssl.
ensure_command rabbitmq-server rabbitmq-server
ensure_command openssl openssl

step "RabbitMQ 4 (a Debian trixie root, built once)"
RPC_TEST_RABBITMQ4_ROOT=$(scripts/rabbitmq4.sh)
export RPC_TEST_RABBITMQ4_ROOT

step "python virtualenv (oslo.messaging for the interop tests)"
# A fresh Debian has no Python; python-env.sh makes sure of `venv`.
[[ -n "${PYTHON:-}" ]] || ensure_command python3 python3
RPC_TEST_PYTHON=$(scripts/python-env.sh)
export RPC_TEST_PYTHON

step "tests"
cargo test --workspace --locked

step "all tests passed"
