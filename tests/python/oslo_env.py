"""Shared set-up of the interop programs: logging and the transport URL.

The URL comes from $OSLO_URL (default: the local RabbitMQ). oslo.messaging
18.3.1 must use the global cfg.CONF (a private ConfigOpts never replies).
"""
import logging
import os
import sys

from oslo_config import cfg
import oslo_messaging as messaging

URL = os.environ.get("OSLO_URL", "rabbit://guest:guest@127.0.0.1:5672/")


def transport():
    logging.basicConfig(stream=sys.stderr, level=os.environ.get("OSLO_LOG", "WARNING"))
    cfg.CONF([], project="rpc-interop")
    return messaging.get_rpc_transport(cfg.CONF, url=URL)


def notification_transport():
    """A notification transport with durable queues, as a deployment sharing
    notification topics with Rust services configures it
    (`[oslo_messaging_rabbit] amqp_durable_queues = true`), on the control
    exchange $OSLO_EXCHANGE (default `openstack`)."""
    logging.basicConfig(stream=sys.stderr, level=os.environ.get("OSLO_LOG", "WARNING"))
    exchange = os.environ.get("OSLO_EXCHANGE")
    if exchange:
        messaging.set_transport_defaults(control_exchange=exchange)
    cfg.CONF([], project="rpc-interop")
    transport = messaging.get_notification_transport(cfg.CONF, url=URL)
    cfg.CONF.set_override("amqp_durable_queues", True, group="oslo_messaging_rabbit")
    return transport
