"""A Python oslo.messaging NotificationListener, for the Rust notifier's
interop tests.

usage: notify_listen.py TOPICS COUNT OUT

Listens on TOPICS (comma-separated) for every priority; prints `ready` once listening; writes
one JSON line per notification to OUT (`priority`, `publisher_id`,
`event_type`, `payload`, `metadata`, `ctxt`) and exits after COUNT.
"""
import json
import sys
import threading

import oslo_messaging as messaging

import oslo_env

topics, count, out = sys.argv[1].split(","), int(sys.argv[2]), sys.argv[3]
received = []
done = threading.Event()
lock = threading.Lock()


class Endpoint(object):
    pass


def handler(priority):
    def handle(self, ctxt, publisher_id, event_type, payload, metadata):
        with lock:
            received.append({
                "priority": priority, "publisher_id": publisher_id,
                "event_type": event_type, "payload": payload,
                "metadata": metadata, "ctxt": ctxt})
            if len(received) >= count:
                done.set()
        return messaging.NotificationResult.HANDLED
    return handle


for priority in ["audit", "debug", "info", "warn", "error", "critical", "sample"]:
    setattr(Endpoint, priority, handler(priority))

transport = oslo_env.notification_transport()
listener = messaging.get_notification_listener(
    transport, [messaging.Target(topic=topic) for topic in topics], [Endpoint()],
    executor="threading")
listener.start()
print("ready", flush=True)
done.wait(60)
listener.stop()
listener.wait()
with open(out, "w") as f:
    for notification in received:
        f.write(json.dumps(notification) + "\n")
sys.exit(0 if done.is_set() else 1)
