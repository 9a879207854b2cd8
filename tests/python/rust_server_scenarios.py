"""Python oslo.messaging client -> Rust server.

usage: rust_server_scenarios.py TOPIC

Two Rust servers, `s1` and `s2`, serve TOPIC with the interop endpoints.
Each scenario prints `ok NAME` or `FAIL NAME` with the traceback; the exit
status is 1 if any failed.
"""
import math
import sys
import time
import traceback

import oslo_messaging as messaging

import oslo_env

topic = sys.argv[1]
transport = oslo_env.transport()
client = messaging.get_rpc_client(transport, messaging.Target(topic=topic), timeout=10)
ctxt = {"user": "alice", "request_id": "req-1", "roles": ["admin", "member"], "nested": {"a": [1, 2.5, None]}}
scenarios = []


def scenario(function):
    scenarios.append(function)
    return function


def wait_until(predicate, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met within %s s" % seconds)


def records(server):
    return client.prepare(server=server).call(ctxt, "records")


@scenario
def call():
    assert client.call(ctxt, "echo", arg="myarg") == "myarg"
    assert client.call(ctxt, "add", a=2, b=40) == 42
    assert client.call(ctxt, "echo", arg="héllo ✓ \"quoted\"") == "héllo ✓ \"quoted\""


@scenario
def cast():
    client.cast(ctxt, "record", value="cast-1")
    wait_until(lambda: "cast-1" in records("s1") + records("s2"))


@scenario
def fanout_cast_reaches_every_server():
    client.prepare(fanout=True).cast(ctxt, "record", value="fan")
    wait_until(lambda: "fan" in records("s1") and "fan" in records("s2"))


@scenario
def prepare_server():
    for server in ("s1", "s2"):
        for _ in range(5):
            assert client.prepare(server=server).call(ctxt, "whoami") == server


@scenario
def namespace_and_version_selection():
    assert client.prepare(namespace="v", version="1.2").call(ctxt, "which") == "1.3"
    assert client.prepare(namespace="v", version="2.0").call(ctxt, "which") == "2.1"
    assert client.prepare(namespace="v", version="2.1").call(ctxt, "which") == "2.1"


@scenario
def unsupported_version():
    try:
        client.prepare(namespace="v", version="3.0").call(ctxt, "which")
    except messaging.RemoteError as error:
        assert error.exc_type == "UnsupportedVersion", error.exc_type
        assert "3.0" in error.value, error.value
    else:
        raise AssertionError("no error")


@scenario
def no_such_method():
    try:
        client.call(ctxt, "nope")
    except messaging.RemoteError as error:
        assert error.exc_type == "NoSuchMethod", error.exc_type
        assert "nope" in error.value, error.value
    else:
        raise AssertionError("no error")


@scenario
def error_raised_in_the_rust_method():
    try:
        client.call(ctxt, "fail", message="the disk is full")
    except messaging.RemoteError as error:
        assert error.exc_type == "InteropError", error.exc_type
        assert "the disk is full" in error.value, error.value
    else:
        raise AssertionError("no error")


@scenario
def invalid_arguments_are_a_type_error():
    try:
        client.call(ctxt, "add", a="one", b=2)
    except TypeError as error:
        assert "add" in str(error), str(error)
    else:
        raise AssertionError("no error")


@scenario
def context_round_trip():
    got = client.call(ctxt, "context")
    for key, value in ctxt.items():
        assert got.get(key) == value, (key, got)


@scenario
def slow_method_kept_alive_by_heartbeats():
    monitored = messaging.get_rpc_client(
        transport, messaging.Target(topic=topic), timeout=10, call_monitor_timeout=2)
    assert monitored.call(ctxt, "slow", seconds=4) == 4


@scenario
def call_that_times_out():
    started = time.time()
    try:
        client.prepare(timeout=1).call(ctxt, "slow", seconds=3)
    except messaging.MessagingTimeout:
        elapsed = time.time() - started
        assert 0.9 < elapsed < 3, elapsed
    else:
        raise AssertionError("no timeout")


@scenario
def non_finite_floats_do_not_crash_the_server():
    # Python sends bare NaN/Infinity tokens; the server reads them as null.
    assert client.call(ctxt, "echo_value", value=[float("nan"), float("inf"), 1.5]) == [None, None, 1.5]
    assert client.call(ctxt, "echo", arg="still serving") == "still serving"


@scenario
def oslo_rpc_server_ping():
    # As openstack-helm's probe does: on any server, then on one.
    assert client.call(ctxt, "oslo_rpc_server_ping") == "pong"
    assert client.prepare(server="s2", timeout=5).call(ctxt, "oslo_rpc_server_ping") == "pong"


failed = 0
for function in scenarios:
    try:
        function()
        print("ok", function.__name__, flush=True)
    except Exception:
        failed += 1
        print("FAIL", function.__name__, flush=True)
        traceback.print_exc()
transport.cleanup()
sys.exit(1 if failed else 0)
