"""oslo.messaging's own client and server, for rpc-bench --peers.

usage: oslo_bench.py URL TOPIC MODE COUNT SIZE THREADS

Starts an oslo.messaging RPC server (its default threading executor) and a client in
this process on the broker at URL (oslo's rabbit:// form), warms up, then
makes COUNT calls of `echo` with a SIZE-byte string: one at a time (MODE
`seq`) or from THREADS threads at once (MODE `pipelined`). Prints one JSON
object: ops_per_s, p50_us, p99_us, count.
"""
import json
import logging
import sys
import threading
import time
import warnings

warnings.simplefilter("ignore")

from oslo_config import cfg
import oslo_messaging as messaging


class Echo(object):
    def echo(self, ctxt, arg):
        return arg


def quantile(sorted_values, q):
    index = min(len(sorted_values) - 1, int(q * len(sorted_values)))
    return sorted_values[index]


def main():
    url, topic, mode, count, size, threads = sys.argv[1:7]
    count, size, threads = int(count), int(size), int(threads)
    logging.basicConfig(stream=sys.stderr, level=logging.ERROR)
    cfg.CONF([], project="rpc-bench")
    transport = messaging.get_rpc_transport(cfg.CONF, url=url)
    server = messaging.get_rpc_server(
        transport, messaging.Target(topic=topic, server="bench"), [Echo()]
    )
    server.start()
    client = messaging.get_rpc_client(transport, messaging.Target(topic=topic), timeout=60)
    payload = "x" * size
    for _ in range(max(10, count // 10)):
        client.call({}, "echo", arg=payload)

    latencies = []
    lock = threading.Lock()
    remaining = [count]

    def worker():
        mine = []
        while True:
            with lock:
                if remaining[0] == 0:
                    break
                remaining[0] -= 1
            started = time.perf_counter()
            client.call({}, "echo", arg=payload)
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=worker) for _ in range(threads if mode == "pipelined" else 1)]
    started = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - started
    server.stop()
    server.wait()
    transport.cleanup()
    latencies.sort()
    print(json.dumps({
        "ops_per_s": count / elapsed,
        "p50_us": quantile(latencies, 0.5) * 1e6,
        "p99_us": quantile(latencies, 0.99) * 1e6,
        "count": count,
    }))


if __name__ == "__main__":
    main()
