"""An old Python oslo.messaging service: the `inventory` API at 1.1.

usage: upgrade_server.py TOPIC SERVER

Prints `ready` once listening; stops on SIGTERM.
"""
import signal
import sys
import threading

import oslo_messaging as messaging

import oslo_env

topic, server_name = sys.argv[1], sys.argv[2]
stopping = threading.Event()
stock = {}


class InventoryV11(object):
    target = messaging.Target(namespace="inventory", version="1.1")

    def add(self, ctxt, item, count):
        if count == 0:
            raise ValueError("nothing to add to %s" % item)
        stock[item] = stock.get(item, 0) + count
        return stock[item]

    def total(self, ctxt):
        return sum(stock.values())


transport = oslo_env.transport()
server = messaging.get_rpc_server(
    transport, messaging.Target(topic=topic, server=server_name), [InventoryV11()])
signal.signal(signal.SIGTERM, lambda *_: stopping.set())
server.start()
print("ready", flush=True)
while not stopping.wait(0.2):
    pass
server.stop()
server.wait()
transport.cleanup()
