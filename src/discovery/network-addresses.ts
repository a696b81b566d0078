/**
 * Which addresses a server bound to `host` can be reached at: for the TDs it hands to a
 * directory or a broker (which need an absolute URL) and for its DNS-SD address records.
 */
import { hostname, networkInterfaces } from "node:os";

/** 127.0.0.0/8, ::1 and localhost reach only this machine. */
export function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** `0.0.0.0`, `::` (and the empty host): every interface. */
export function isWildcardHost(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "";
}

/**
 * The addresses to announce for a server bound to `host`: that address itself, or for a
 * wildcard bind every non-internal IPv4 address (loopback when there is no other, as in a
 * network namespace holding only `lo`).
 */
export function reachableAddresses(host: string): string[] {
  if (!isWildcardHost(host)) return [host === "localhost" ? "127.0.0.1" : host];
  const external = Object.values(networkInterfaces())
    .flatMap((entries) => entries ?? [])
    .filter((entry) => entry.family === "IPv4" && !entry.internal)
    .map((entry) => entry.address);
  return external.length > 0 ? external : ["127.0.0.1"];
}

/** `http://address:port`: the origin others reach the server at (first reachable address). */
export function reachableOrigin(host: string, port: number): string {
  const address = reachableAddresses(host)[0]!;
  return `http://${address.includes(":") ? `[${address}]` : address}:${port}`;
}

/** A DNS label from this machine's name: what DNS-SD instance and host names start with. */
export function machineLabel(): string {
  const label = hostname()
    .split(".")[0]!
    .replace(/[^A-Za-z0-9-]/g, "-");
  return label === "" ? "labthings" : label.slice(0, 40);
}
