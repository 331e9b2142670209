"""Free ports for the stack's services in tests."""

from __future__ import annotations

import random
import socket

from local_aws.seaweedfs import GRPC_PORT_OFFSET

# Ports below Linux's ephemeral range (32768+), gRPC companions (+10000) included, so that no outgoing
# connection takes one between the pick and the bind.
_PORT_RANGE = (15000, 22000)
_picked: set[int] = set()


def port_is_free(port: int) -> bool:
    """Whether a server could bind ``port`` on 127.0.0.1 now (connections in TIME_WAIT do not hold it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A free port on 127.0.0.1 whose gRPC companion (+10000) is free too; never twice in a session."""
    for _ in range(1000):
        port = random.randrange(*_PORT_RANGE)
        companion = port + GRPC_PORT_OFFSET
        pair = (port, companion)
        if not set(pair) & _picked and all(port_is_free(each) for each in pair):
            _picked.update({port, companion})
            return port
    raise RuntimeError(f"no free port pair in {_PORT_RANGE}")
