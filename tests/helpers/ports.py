"""A free TCP port on the loopback, as examples/topologies.py picks them for its Valkey nodes."""
from examples.topologies import free_port

__all__ = ["free_port"]
