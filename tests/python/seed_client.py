"""The seed's RPC-client.py (../shared/seed/), in Python 3: calls `test` with
arg='myarg' on topic `test`, prints the result, then casts `stop` through
prepare(namespace='control', version='2.0').
"""
import oslo_messaging as messaging

import oslo_env

transport = oslo_env.transport()
target = messaging.Target(topic='test')
client = messaging.get_rpc_client(transport, target)
ret = client.call(ctxt={}, method='test', arg='myarg')
print(ret, flush=True)
cctxt = client.prepare(namespace='control', version='2.0')
cctxt.cast({}, 'stop')
transport.cleanup()
