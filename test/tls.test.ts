/**
 * HTTPS and WSS with certificates the test makes with `openssl` (for 127.0.0.1), checked
 * by independent clients: curl (`--cacert`), the ThingClient (through `labthings-ts call`,
 * trusting the certificate with NODE_EXTRA_CA_CERTS, as a user would), a websocket client
 * (`ws` with the certificate as its CA) and Chromium (trusting the key's SPKI hash) showing
 * the dashboard. TDs' `base` and every absolute href are https/wss. `call` with a viewer
 * token reports the 403 clearly. The CLI's `--tls-cert`/`--tls-key`: an unreadable file or
 * a key of another certificate is a clear error, and binding beyond loopback without TLS
 * warns about plain HTTP (run inside `unshare --net`, a network of its own).
 *
 * Runs `dist/` for the CLI: `npm test` builds first; run `npm run build` before this file.
 */
import { execFile, execFileSync } from "node:child_process";
import { createHash, X509Certificate } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { SimulatedCamera, SimulatedStage } from "../examples/microscope/index.js";
import { ThingServer } from "../src/index.js";
import { withChromium } from "./support/chromium.js";
import { assertBuilt, CLI, killAll, listeningUrl, STAGE, startCli } from "./support/cli-process.js";
import { removeTempDirs, tempDir } from "./support/temp-dir.js";
import { within } from "./support/within.js";

const run = promisify(execFile);
const OPERATOR = "tls-operator-token-0123456789abcdef";
const VIEWER = "tls-viewer-token-0123456789abcdef0";

let dir: string;
let certFile: string;
let keyFile: string;
let otherKeyFile: string;
let server: ThingServer;
let base: string;

/** `openssl req -x509` for 127.0.0.1: a self-signed certificate a client can be told to trust. */
function makeCertificate(name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}-cert.pem`);
  const key = join(dir, `${name}-key.pem`);
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-keyout",
      key,
      "-out",
      cert,
    ],
    { stdio: "pipe" },
  );
  return { cert, key };
}

beforeAll(async () => {
  assertBuilt();
  dir = await tempDir("labthings-tls-");
  ({ cert: certFile, key: keyFile } = makeCertificate("server"));
  otherKeyFile = makeCertificate("other").key;
  server = new ThingServer(
    [
      { name: "stage", thing: new SimulatedStage() },
      { name: "camera", thing: new SimulatedCamera({ width: 64, height: 48, fps: 10 }) },
    ],
    {
      port: 0,
      tls: { cert: await readFile(certFile), key: await readFile(keyFile) },
      authToken: OPERATOR,
      authTokens: [{ token: VIEWER, role: "viewer" }],
    },
  );
  base = await server.start();
});

afterAll(async () => {
  await server?.close();
  await killAll();
  await removeTempDirs();
});

async function curl(...args: string[]): Promise<string> {
  const { stdout } = await run("curl", ["-sS", "--fail-with-body", "--cacert", certFile, ...args]);
  return stdout;
}

/** Every string in a JSON value that looks like an absolute URL. */
function absoluteUrls(value: unknown): string[] {
  if (typeof value === "string") return /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? [value] : [];
  if (Array.isArray(value)) return value.flatMap(absoluteUrls);
  if (value && typeof value === "object") return Object.values(value).flatMap(absoluteUrls);
  return [];
}

describe("HTTPS", () => {
  it("the server's URL is https; curl trusting the certificate reads a TD whose base and hrefs are https", async () => {
    expect(base).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const td = JSON.parse(await curl(`${base}/stage/`)) as { base: string; links?: unknown };
    expect(td.base).toBe(`${base}/stage/`);
    // Vocabulary IRIs (www.w3.org) are names, not addresses; every address of this server is secure.
    const own = absoluteUrls(td).filter((url) => url.includes("127.0.0.1"));
    expect(own.length).toBeGreaterThan(0);
    for (const url of own) expect(url, url).toMatch(/^(https|wss):\/\//);
    expect(JSON.stringify(td)).not.toMatch(/(http|ws):\/\/127\.0\.0\.1/);
    const things = JSON.parse(await curl(`${base}/things/`)) as Record<string, string>;
    expect(things.stage).toBe(`${base}/stage/`);
    // Without trusting it, curl refuses the connection (the certificate is what is checked).
    await expect(run("curl", ["-sS", `${base}/stage/`])).rejects.toThrow(/certificate/i);
  });

  it("curl writes and reads with the operator's token, and streams a snapshot", async () => {
    await curl(
      "-X",
      "PUT",
      "-H",
      `authorization: Bearer ${OPERATOR}`,
      "-H",
      "content-type: application/json",
      "-d",
      "1700",
      `${base}/stage/speed`,
    );
    expect(await curl("-H", `authorization: Bearer ${VIEWER}`, `${base}/stage/speed`)).toBe("1700");
    // The simulated camera makes frames while someone watches: a viewer for two seconds.
    const watching = run("curl", [
      "-sS",
      "--cacert",
      certFile,
      "--max-time",
      "2",
      "-o",
      "/dev/null",
      `${base}/camera/stream?access_token=${VIEWER}`,
    ]).catch((error: { code?: number }) => error);
    const { stdout } = await run(
      "curl",
      [
        "-sS",
        "--fail",
        // Before the camera's first frame the snapshot is 503 with Retry-After: curl waits.
        "--retry",
        "20",
        "--cacert",
        certFile,
        "-o",
        "-",
        `${base}/camera/stream/snapshot?access_token=${VIEWER}`,
      ],
      { encoding: "buffer" },
    );
    expect(
      Buffer.from(stdout).subarray(0, 2),
      Buffer.from(stdout).toString().slice(0, 300),
    ).toEqual(Buffer.from([0xff, 0xd8]));
    // curl ends the stream itself after --max-time: exit 28, and it did get the stream.
    expect((await watching) as { code?: number }).toMatchObject({ code: 28 });
  });

  it("the ThingClient (labthings-ts call) trusts it through NODE_EXTRA_CA_CERTS; a viewer's write is a clear 403", async () => {
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: certFile, NO_COLOR: "1" };
    const read = await run(
      process.execPath,
      [CLI, "call", `${base}/stage/`, "speed", "--token", VIEWER],
      { env },
    );
    expect(read.stdout.trim()).toBe("1700");
    const write = await run(
      process.execPath,
      [CLI, "call", `${base}/stage/`, "speed", "1800", "--token", OPERATOR],
      { env },
    );
    expect(write.stderr).toContain("speed = 1800");
    const refused = await run(
      process.execPath,
      [CLI, "call", `${base}/stage/`, "speed", "1900", "--token", VIEWER],
      { env },
    ).catch((error: { code: number; stderr: string }) => error);
    expect("code" in refused ? refused.code : 0).toBe(1);
    const message = (refused as { stderr: string }).stderr;
    expect(message).toMatch(/403 Forbidden/);
    expect(message).toContain("needs a token with the 'operator' role");
    expect(message).toContain("this token has the 'viewer' role");
    expect(message).not.toContain(VIEWER);
  });

  it("a websocket over WSS observes a property", async () => {
    const ca = await readFile(certFile);
    const socket = new WebSocket(
      `${base.replace(/^https/, "wss")}/stage/ws?access_token=${VIEWER}`,
      {
        ca,
      },
    );
    try {
      await within(
        new Promise((resolve, reject) => {
          socket.once("open", resolve);
          socket.once("error", reject);
        }),
        "the WSS connection",
      );
      socket.send(JSON.stringify({ messageType: "addPropertyObservation", data: { speed: true } }));
      const message = within(
        new Promise<string>((resolve) => socket.on("message", (data) => resolve(String(data)))),
        "a speed update over WSS",
      );
      let speed = 1000;
      const nudge = setInterval(() => {
        (server.registry.get("stage").thing as SimulatedStage).speed = speed++;
      }, 20);
      try {
        expect(JSON.parse(await message)).toMatchObject({
          messageType: "propertyStatus",
          data: { speed: expect.any(Number) },
        });
      } finally {
        clearInterval(nudge);
      }
    } finally {
      socket.close();
    }
  });

  it("Chromium trusting the key shows the dashboard over HTTPS: live values and the stream", async () => {
    const spki = createHash("sha256")
      .update(
        new X509Certificate(await readFile(certFile)).publicKey.export({
          type: "spki",
          format: "der",
        }),
      )
      .digest("base64");
    await withChromium(
      async (browser) => {
        const page = await browser.newPage();
        const insecure: string[] = [];
        page.on("request", (request) => {
          if (!request.url().startsWith("https:") && !request.url().startsWith("data:"))
            insecure.push(request.url());
        });
        await page.goto(`${base}/#token=${OPERATOR}`);
        const speed = page.locator('[data-thing="stage"] [data-property="speed"] output');
        await expect.poll(() => speed.textContent(), { timeout: 20_000 }).toMatch(/^\d+/);
        const image = page.locator("img.microscope-image");
        await page.waitForFunction(
          (img) => (img as HTMLImageElement | null)?.naturalWidth === 64,
          await image.elementHandle(),
          { timeout: 20_000 },
        );
        expect(insecure).toEqual([]);
        expect(await page.evaluate(() => location.protocol)).toBe("https:");
      },
      [`--ignore-certificate-errors-spki-list=${spki}`],
    );
  });
});

describe("the CLI's --tls-cert and --tls-key", () => {
  it("serve HTTPS (flags, or config keys relative to the config file); the log's URL is https", async () => {
    const cli = startCli(["--port", "0", "--tls-cert", certFile, "--tls-key", keyFile]);
    const url = await listeningUrl(cli);
    expect(url).toMatch(/^https:\/\//);
    expect(JSON.parse(await curl(`${url}/stage/`)).base).toBe(`${url}/stage/`);
    cli.signal("SIGTERM");
    expect((await within(cli.closed, "the CLI to exit")).code).toBe(0);

    const config = join(dir, "lab.json");
    await writeFile(
      config,
      JSON.stringify({
        things: { stage: STAGE },
        tls: { certFile: "server-cert.pem", keyFile: "server-key.pem" },
      }),
    );
    const fromConfig = startCli(["--config", config, "--port", "0"], { cwd: tmpdir() });
    const configured = await listeningUrl(fromConfig);
    expect(configured).toMatch(/^https:\/\//);
    expect(await curl(`${configured}/stage/speed`)).toBe("2000");
    fromConfig.signal("SIGTERM");
    expect((await within(fromConfig.closed, "the CLI to exit")).code).toBe(0);
  });

  it("a key of another certificate, or a file that cannot be read, is a clear error (exit 2)", async () => {
    const mismatched = startCli(["--port", "0", "--tls-cert", certFile, "--tls-key", otherKeyFile]);
    expect((await within(mismatched.closed, "the CLI to exit")).code).toBe(2);
    expect(mismatched.stderr()).toContain(
      `config tls.keyFile: ${otherKeyFile} does not belong to ${certFile}`,
    );

    const missing = join(dir, "missing.pem");
    const unreadable = startCli(["--port", "0", "--tls-cert", missing, "--tls-key", keyFile]);
    expect((await within(unreadable.closed, "the CLI to exit")).code).toBe(2);
    expect(unreadable.stderr()).toContain(`config tls.certFile: cannot read ${missing}`);

    const swapped = startCli(["--port", "0", "--tls-cert", keyFile, "--tls-key", certFile]);
    expect((await within(swapped.closed, "the CLI to exit")).code).toBe(2);
    expect(swapped.stderr()).toContain("is not a PEM certificate");

    const half = startCli(["--port", "0", "--tls-cert", certFile]);
    expect((await within(half.closed, "the CLI to exit")).code).toBe(2);
    expect(half.stderr()).toContain("--tls-cert needs --tls-key too");

    // In a config file the same mistake is named by its key.
    const halfConfig = join(dir, "half.json");
    await writeFile(
      halfConfig,
      JSON.stringify({ things: { stage: STAGE }, tls: { certFile: "server-cert.pem" } }),
    );
    const halfFromConfig = startCli(["--config", halfConfig, "--port", "0"], { cwd: tmpdir() });
    expect((await within(halfFromConfig.closed, "the CLI to exit")).code).toBe(2);
    expect(halfFromConfig.stderr()).toContain("tls.keyFile: is missing (it is required)");
  });

  it("beyond loopback without TLS it warns about plain HTTP (and without a token, about that too)", async (context) => {
    try {
      execFileSync("unshare", ["--net", "true"], { stdio: "pipe" });
    } catch (error) {
      return context.skip(`cannot make a network namespace (unshare --net): ${error}`);
    }
    const cli = startCli(["--port", "0", "--host", "0.0.0.0"], { launcher: ["unshare", "--net"] });
    await listeningUrl(cli);
    const warnings = cli.lines.filter((line) => line.level === 40).map((line) => String(line.msg));
    expect(warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/without authentication/),
        expect.stringMatching(/over plain HTTP: .*unencrypted.*--tls-cert and --tls-key/),
      ]),
    );
    cli.signal("SIGTERM");
    await within(cli.closed, "the CLI to exit");

    const secured = startCli(
      ["--port", "0", "--host", "0.0.0.0", "--tls-cert", certFile, "--tls-key", keyFile],
      { launcher: ["unshare", "--net"], env: { LABTHINGS_TOKEN: OPERATOR } },
    );
    await listeningUrl(secured);
    expect(
      secured.lines.filter((line) => /plain HTTP|without authentication/.test(String(line.msg))),
    ).toEqual([]);
    secured.signal("SIGTERM");
    await within(secured.closed, "the CLI to exit");
  });
});
