/**
 * `labthings-ts devices` as a user runs it (the built CLI): video devices with the
 * formats v4l2-ctl reports, serial ports, and the config entry for each. This machine
 * has no camera, so a device folder made by the test holds a serial port (a socat pty)
 * and a "video" node that is not one (v4l2-ctl's refusal is shown); the format parser is
 * checked on v4l2-ctl's output format.
 */
import { execFile } from "node:child_process";
import { symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cameraSnippet, parseV4l2Formats } from "../src/cli/devices.js";
import { assertBuilt, CLI } from "./support/cli-process.js";
import { PtyPair } from "./support/pty-pair.js";
import { removeTempDirs, tempDir } from "./support/temp-dir.js";

const pairs: PtyPair[] = [];
beforeAll(assertBuilt);
afterAll(async () => {
  for (const pair of pairs) await pair.unplug();
  await removeTempDirs();
});

function devices(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, "devices", ...args],
      { timeout: 15_000 },
      (error, stdout, stderr) =>
        resolve({
          code: error ? Number((error as { code?: number }).code ?? 1) : 0,
          stdout,
          stderr,
        }),
    );
  });
}

const LIST_FORMATS = `ioctl: VIDIOC_ENUM_FMT
\tType: Video Capture

\t[0]: 'MJPG' (Motion-JPEG, compressed)
\t\tSize: Discrete 1280x720
\t\t\tInterval: Discrete 0.033s (30.000 fps)
\t\t\tInterval: Discrete 0.067s (15.000 fps)
\t\tSize: Discrete 640x480
\t\t\tInterval: Discrete 0.033s (30.000 fps)
\t[1]: 'YUYV' (YUYV 4:2:2)
\t\tSize: Discrete 640x480
\t\t\tInterval: Discrete 0.033s (30.000 fps)
`;

describe("labthings-ts devices", () => {
  it("lists a serial port and a video node, with their config entries", async () => {
    const dir = await tempDir("dev-");
    const pair = new PtyPair(await tempDir("pty-"));
    await pair.plug();
    pairs.push(pair);
    await symlink(pair.host, join(dir, "ttyACM0"));
    await writeFile(join(dir, "video0"), "");
    const text = await devices(["--dev", dir]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`${dir}/ttyACM0`);
    expect(text.stdout).toContain(
      `"class":"labthings-ts/instruments#SangaboardStage","options":{"port":"${dir}/ttyACM0"}`,
    );
    expect(text.stdout).toContain(`${dir}/video0`);
    expect(text.stdout).toMatch(/formats unknown: .+/);

    const json = JSON.parse((await devices(["--dev", dir, "--json"])).stdout) as {
      video: { path: string; error?: string }[];
      serial: { path: string }[];
      v4l2ctl: boolean;
    };
    expect(json.serial).toEqual([{ path: `${dir}/ttyACM0` }]);
    expect(json.video[0]!.path).toBe(`${dir}/video0`);
    expect(json.v4l2ctl).toBe(true);
    expect(json.video[0]!.error, "v4l2-ctl refused a node that is no camera").toBeTruthy();
  });

  it("says plainly when there is nothing, and refuses an unknown flag", async () => {
    const empty = await devices(["--dev", await tempDir("nodev-")]);
    expect(empty.stdout).toContain("Video devices: none");
    expect(empty.stdout).toContain("Serial ports: none");
    const wrong = await devices(["--frobnicate"]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("Usage: labthings-ts devices");
  });

  it("reads v4l2-ctl's format list into a camera config at the best MJPEG size", () => {
    const formats = parseV4l2Formats(LIST_FORMATS);
    expect(formats.map((f) => f.pixelFormat)).toEqual(["MJPG", "YUYV"]);
    expect(formats[0]!.sizes[0]).toEqual({ width: 1280, height: 720, fps: [30, 15] });
    expect(cameraSnippet({ path: "/dev/video0", formats })).toEqual({
      class: "labthings-ts/instruments#FfmpegCamera",
      options: { device: "/dev/video0", width: 1280, height: 720, fps: 30 },
    });
    expect(cameraSnippet({ path: "/dev/video2", formats: [formats[1]!] }).options).toMatchObject({
      inputFormat: "yuyv422",
    });
  });
});
