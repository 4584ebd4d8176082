"""A loopback port no one listens on right now, for a server a test starts
(the kernel picks it; a race with another process is possible but rare)."""
import socket


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
