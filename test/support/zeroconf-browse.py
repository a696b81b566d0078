"""Browse _wot._tcp with python3-zeroconf (an independent DNS-SD implementation) on the
loopback interface of the network namespace it runs in. One JSON line per event:
{"event": "add"|"update"|"remove", "name", "port", "txt", "addresses"}. Runs for argv[1]
seconds at most."""
import json
import sys
import time

from zeroconf import IPVersion, ServiceBrowser, ServiceListener, Zeroconf


def report(zc, kind, type_, name):
    line = {"event": kind, "name": name}
    if kind != "remove":
        info = zc.get_service_info(type_, name, timeout=3000)
        if info is not None:
            line["port"] = info.port
            line["txt"] = {k.decode(): (v.decode() if v is not None else None) for k, v in info.properties.items()}
            line["addresses"] = info.parsed_addresses()
    print(json.dumps(line), flush=True)


class Listener(ServiceListener):
    def add_service(self, zc, type_, name):
        report(zc, "add", type_, name)

    def update_service(self, zc, type_, name):
        report(zc, "update", type_, name)

    def remove_service(self, zc, type_, name):
        report(zc, "remove", type_, name)


zc = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
ServiceBrowser(zc, "_wot._tcp.local.", Listener())
print(json.dumps({"event": "browsing"}), flush=True)
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 30)
zc.close()
