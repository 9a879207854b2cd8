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
