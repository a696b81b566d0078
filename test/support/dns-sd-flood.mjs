// A hostile (or broken) machine on the network: announces `count` unique `_wot._tcp`
// instances, each complete (PTR, SRV, TXT, A) and with a TTL of years, unasked, in packets
// of 25 instances. Runs inside the test's network namespace only. argv[2] the count.
// Prints "flooded <count>" when every packet is sent, then exits.
import makeMdns from "multicast-dns";

const count = Number(process.argv[2] ?? 2000);
const TTL = 100_000_000; // about three years
const mdns = makeMdns();
for (let first = 0; first < count; first += 25) {
  const answers = [];
  for (let i = first; i < Math.min(first + 25, count); i++) {
    const instance = `flood-${i}._wot._tcp.local`;
    const host = `flood-${i}.local`;
    answers.push(
      { name: "_wot._tcp.local", type: "PTR", ttl: TTL, data: instance },
      { name: instance, type: "SRV", ttl: TTL, data: { port: 20000 + i, target: host } },
      { name: instance, type: "TXT", ttl: TTL, data: ["td=/thing/", "type=Thing", "scheme=http"] },
      { name: host, type: "A", ttl: TTL, data: "127.0.0.1" },
    );
  }
  await new Promise((resolve) => mdns.respond({ answers }, resolve));
  // Paced a little, so the receiver's socket buffer is not what bounds the count.
  await new Promise((resolve) => setTimeout(resolve, 5));
}
console.log(`flooded ${count}`);
mdns.destroy();
