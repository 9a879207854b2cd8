"""The seed's RPC-server.py (../shared/seed/, a blog post on oslo.messaging's
RPC), in Python 3: a server on topic `test`, server `server1`, with
ServerControlEndpoint (namespace `control`, version `2.0`) and TestEndpoint.

The blog used the `blocking` executor, removed from oslo.messaging in 12.0.0;
this uses the default one. It stops when a client casts `stop`.
"""
import threading

import oslo_messaging

import oslo_env

stopped = threading.Event()


class ServerControlEndpoint(object):
    target = oslo_messaging.Target(namespace='control', version='2.0')

    def __init__(self, server):
        self.server = server

    def stop(self, ctx):
        print("------ServerControlEndpoint. stop --------", flush=True)
        stopped.set()


class TestEndpoint(object):
    def test(self, ctx, arg):
        print("------ TestEndpoint.test --------", flush=True)
        return arg


transport = oslo_env.transport()
target = oslo_messaging.Target(topic='test', server='server1')
endpoints = [ServerControlEndpoint(None), TestEndpoint()]
server = oslo_messaging.get_rpc_server(transport, target, endpoints)
try:
    server.start()
    print("ready", flush=True)
    while not stopped.wait(1):
        pass
except KeyboardInterrupt:
    print("Stopping server")
server.stop()
server.wait()
transport.cleanup()
