"""Free loopback ports for test servers (never a service's standard port)."""
import socket


def free_port(kind=socket.SOCK_STREAM, host="127.0.0.1"):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_tcp_udp_port(host="127.0.0.1", attempts=50):
    """A port free for both TCP and UDP (the DC-09 receiver listens on both)."""
    for _ in range(attempts):
        port = free_port(socket.SOCK_STREAM, host)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind((host, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no port free for both TCP and UDP")
