"""Announce one _wot._tcp instance with python3-zeroconf on the loopback interface of the
network namespace it runs in, as any machine on a network could: argv[1] the instance
name, argv[2] the port, argv[3] the TXT `scheme`, argv[4] the TXT `td`. Prints
"announced" once registered, then runs until killed."""
import socket
import sys
import time

from zeroconf import ServiceInfo, Zeroconf

name, port, scheme, td = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
zc = Zeroconf(interfaces=["127.0.0.1"])
info = ServiceInfo(
    "_wot._tcp.local.",
    f"{name}._wot._tcp.local.",
    addresses=[socket.inet_aton("127.0.0.1")],
    port=port,
    properties={"td": td, "type": "Thing", "scheme": scheme},
    server=f"{name}.local.",
)
zc.register_service(info)
print("announced", flush=True)
while True:
    time.sleep(1)
