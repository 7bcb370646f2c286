"""The one network check the library makes before a download."""
import socket


def is_online(host, timeout=3.0):
    """Whether `host` resolves: a quick test before a download that would otherwise hang or
    retry for a long time without a network."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        socket.getaddrinfo(host, 443)
        return True
    except OSError:
        return False
    finally:
        socket.setdefaulttimeout(previous)
