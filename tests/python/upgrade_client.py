"""An old Python oslo.messaging client, capped at 1.1, against a Rust
`inventory` server at 1.2.

usage: upgrade_client.py TOPIC

Each scenario prints `ok NAME` or `FAIL NAME` with the traceback; the exit
status is 1 if any failed.
"""
import sys
import traceback

import oslo_messaging as messaging

import oslo_env

topic = sys.argv[1]
transport = oslo_env.transport()
client = messaging.get_rpc_client(
    transport, messaging.Target(topic=topic, namespace="inventory", version="1.0"),
    version_cap="1.1", timeout=10)
ctxt = {"request_id": "req-upgrade"}
scenarios = []


def scenario(function):
    scenarios.append(function)
    return function


@scenario
def the_cap_says_what_can_be_sent():
    assert client.can_send_version("1.1")
    assert not client.can_send_version("1.2")


@scenario
def methods_of_1_0_and_1_1_are_served():
    assert client.call(ctxt, "add", item="bolt", count=2) == 2
    assert client.prepare(version="1.1").call(ctxt, "total") == 2


@scenario
def the_new_method_is_refused_by_the_cap():
    try:
        client.prepare(version="1.2").call(ctxt, "locations")
    except messaging.RPCVersionCapError:
        return
    raise AssertionError("the 1.2 method was sent through a 1.1 cap")


@scenario
def a_typed_rust_error_reads_as_a_remote_error():
    try:
        client.call(ctxt, "add", item="nut", count=0)
    except messaging.RemoteError as error:
        assert error.exc_type == "StockError", error.exc_type
        assert "nothing to add to `nut`" in error.value, error.value
        return
    raise AssertionError("no error for an empty add")


failed = False
for function in scenarios:
    try:
        function()
        print("ok %s" % function.__name__, flush=True)
    except Exception:
        failed = True
        print("FAIL %s" % function.__name__, flush=True)
        traceback.print_exc(file=sys.stdout)
transport.cleanup()
sys.exit(1 if failed else 0)
