"""A Python oslo.messaging Notifier, for the Rust listeners' interop tests.

usage: notify_send.py TOPIC [--anonymous]

Sends, on TOPIC, with a RequestContext (whose auth token the notifier
redacts): one notification of every priority with each driver
(`messagingv2`, then `messaging`), event type `interop.<driver>.<priority>`,
payload `{"priority": ..., "driver": ..., "n": ...}`; then `requeue.me`
(info); with `--anonymous`, then `anonymous.event` (info) from a notifier
that names no publisher (`publisher_id` null on the wire). Prints `sent N`.
"""
import sys

from oslo_context import context
import oslo_messaging as messaging

import oslo_env

PRIORITIES = ["audit", "debug", "info", "warn", "error", "critical", "sample"]

topic = sys.argv[1]
transport = oslo_env.notification_transport()
ctxt = context.RequestContext(
    user_id="alice", project_id="p1", request_id="req-notify", auth_token="s3cr3t")
sent = 0
for driver in ["messagingv2", "messaging"]:
    notifier = messaging.Notifier(
        transport, publisher_id="compute.py-host", driver=driver, topics=[topic])
    for n, priority in enumerate(PRIORITIES):
        payload = {"priority": priority, "driver": driver, "n": n}
        getattr(notifier, priority)(ctxt, "interop.%s.%s" % (driver, priority), payload)
        sent += 1
notifier = messaging.Notifier(
    transport, publisher_id="compute.py-host", driver="messagingv2", topics=[topic])
notifier.info(ctxt, "requeue.me", {"again": True})
sent += 1
if "--anonymous" in sys.argv[2:]:
    anonymous = messaging.Notifier(transport, driver="messagingv2", topics=[topic])
    anonymous.info(ctxt, "anonymous.event", {"n": 0})
    sent += 1
print("sent %d" % sent)
