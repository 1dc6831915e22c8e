"""Attack: reach the host network.

The test listens on the host's 127.0.0.1 (TCP port HKS_TCP_PORT, UDP port
HKS_UDP_PORT) and on a host abstract unix socket (HKS_ABSTRACT). Without
--network the sandbox has its own empty network namespace and only AF_UNIX
sockets: socket(AF_INET/AF_INET6/AF_PACKET) must fail (EPERM / EAFNOSUPPORT /
EACCES, or SIGSYS), and the abstract socket (per network namespace) must not
be reachable (ECONNREFUSED). The test checks its listeners saw nothing."""
import errno
import os
import socket

from _common import attempt, deny_errnos, finish, gate

gate("network")
deny = deny_errnos()
tcp_port = int(os.environ.get("HKS_TCP_PORT", "9"))
udp_port = int(os.environ.get("HKS_UDP_PORT", "9"))
abstract = os.environ.get("HKS_ABSTRACT", "hks-sectest-none")
SOCKET_DENIED = [errno.EAFNOSUPPORT, errno.EACCES]


def err(e, stage):
    return {"ret": -1, "errno": e.errno, "errname": errno.errorcode.get(e.errno), "stage": stage}


def tcp(family, host):
    try:
        s = socket.socket(family, socket.SOCK_STREAM)
    except OSError as e:
        return err(e, "socket")
    s.settimeout(3)
    try:
        s.connect((host, tcp_port))
    except OSError as e:
        r = err(e, "connect")
        r["socket_created"] = True
        # AF_INET allowed (contract: AF_UNIX only without --network) though no connection
        r["force_verdict"] = "unexpected"
        return r
    s.sendall(b"pwned from the sandbox\n")
    return {"ret": 0, "errno": 0, "stage": "connected"}


def udp(family, host):
    try:
        s = socket.socket(family, socket.SOCK_DGRAM)
    except OSError as e:
        return err(e, "socket")
    try:
        for _ in range(5):
            s.sendto(b"pwned from the sandbox\n", (host, udp_port))
    except OSError as e:
        r = err(e, "sendto")
        r["socket_created"] = True
        r["force_verdict"] = "unexpected"
        return r
    return {"ret": 0, "errno": 0, "stage": "sent"}


def raw(family, type_, proto=0):
    try:
        socket.socket(family, type_, proto)
    except OSError as e:
        return err(e, "socket")
    return {"ret": 0, "errno": 0, "stage": "socket"}


def unix_abstract():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect("\0" + abstract)
    except OSError as e:
        return err(e, "connect")
    s.sendall(b"pwned from the sandbox\n")
    return {"ret": 0, "errno": 0, "stage": "connected"}


results = {}
for label, fn in (("tcp 127.0.0.1", lambda: tcp(socket.AF_INET, "127.0.0.1")),
                  ("udp 127.0.0.1", lambda: udp(socket.AF_INET, "127.0.0.1")),
                  ("tcp6 ::1", lambda: tcp(socket.AF_INET6, "::1")),
                  ("udp6 ::1", lambda: udp(socket.AF_INET6, "::1")),
                  ("AF_PACKET raw", lambda: raw(socket.AF_PACKET, socket.SOCK_RAW)),
                  ("AF_INET raw icmp", lambda: raw(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))):
    r = attempt(fn)
    r["accept"] = SOCKET_DENIED
    results[label] = r

r = attempt(unix_abstract)
# for the abstract socket, ECONNREFUSED (name not bound in our namespace) is the right failure
r["accept"] = [errno.ECONNREFUSED]
results["abstract unix @" + abstract] = r

finish("network", results, deny)
