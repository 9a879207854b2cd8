"""A Python oslo.messaging server for the Rust client's interop tests.

usage: python_server.py TOPIC SERVER

Prints `ready` once listening; stops on a `stop` cast (namespace `control`,
version `2.0`), or on SIGTERM. With $OSLO_PING set, answers oslo's
`oslo_rpc_server_ping` (`rpc_ping_enabled = true`).
"""
import os
import signal
import sys
import threading
import time

from oslo_config import cfg
import oslo_messaging as messaging

import oslo_env

topic, server_name = sys.argv[1], sys.argv[2]
stopping = threading.Event()
records = []


class TestEndpoint(object):
    def echo(self, ctxt, arg):
        return arg

    def add(self, ctxt, a, b):
        return a + b

    def whoami(self, ctxt):
        return server_name

    def record(self, ctxt, value):
        records.append(value)

    def records(self, ctxt):
        return list(records)

    def fail(self, ctxt, message):
        raise ValueError(message)

    def context(self, ctxt):
        return ctxt

    def slow(self, ctxt, seconds):
        time.sleep(seconds)
        return seconds


class VersionOne(object):
    target = messaging.Target(namespace="v", version="1.3")

    def which(self, ctxt):
        return "1.3"


class VersionTwo(object):
    target = messaging.Target(namespace="v", version="2.1")

    def which(self, ctxt):
        return "2.1"


class Control(object):
    target = messaging.Target(namespace="control", version="2.0")

    def stop(self, ctxt):
        stopping.set()


transport = oslo_env.transport()
if os.environ.get("OSLO_PING"):
    # oslo registers the option when it builds a dispatcher; set it before.
    from oslo_messaging.rpc import dispatcher
    cfg.CONF.register_opts(dispatcher._dispatcher_opts)
    cfg.CONF.set_override("rpc_ping_enabled", True)
server = messaging.get_rpc_server(
    transport, messaging.Target(topic=topic, server=server_name),
    [TestEndpoint(), VersionOne(), VersionTwo(), Control()])
signal.signal(signal.SIGTERM, lambda *_: stopping.set())
server.start()
print("ready", flush=True)
while not stopping.wait(0.2):
    pass
server.stop()
server.wait()
transport.cleanup()
