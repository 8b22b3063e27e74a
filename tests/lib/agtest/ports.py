"""Free loopback ports for the processes the tests start."""
import socket


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A TCP port free on `host` at the time of the call (aerogramd cannot
    listen on port 0 and report it, so the caller picks one)."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]
