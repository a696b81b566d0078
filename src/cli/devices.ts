/**
 * `labthings-ts devices`: the cameras and serial ports this machine has, with the
 * config snippet for each, so a first config can be written without guessing paths.
 * Video formats come from v4l2-ctl (v4l-utils) when it is installed.
 */
import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { findExecutable } from "../instruments/process/find-executable.js";

export const DEVICES_USAGE = `Usage: labthings-ts devices [--json] [--dev DIR]

List video devices (with their formats when v4l2-ctl is installed) and serial ports,
each with the config entry that uses it.

Options:
      --json     print one JSON object instead of text
      --dev DIR  where device files are (default /dev)
  -h, --help     show this help`;

export interface VideoFormat {
  /** The FourCC, e.g. MJPG, YUYV. */
  pixelFormat: string;
  description: string;
  sizes: { width: number; height: number; fps: number[] }[];
}

export interface VideoDevice {
  path: string;
  name?: string;
  formats?: VideoFormat[];
  /** Why the formats could not be read. */
  error?: string;
}

export interface SerialDevice {
  path: string;
  manufacturer?: string;
  vendorId?: string;
  productId?: string;
  serialNumber?: string;
}

export interface DeviceList {
  video: VideoDevice[];
  serial: SerialDevice[];
  /** v4l2-ctl was found (formats are listed). */
  v4l2ctl: boolean;
}

const SERIAL_NAMES = /^(ttyUSB\d+|ttyACM\d+|ttyAMA\d+|serial\d+|rfcomm\d+|tty\.usb.*|cu\.usb.*)$/;
const byNumber = (a: string, b: string) => a.localeCompare(b, undefined, { numeric: true });

/** Parse `v4l2-ctl --list-formats-ext`. */
export function parseV4l2Formats(text: string): VideoFormat[] {
  const formats: VideoFormat[] = [];
  for (const line of text.split("\n")) {
    const format = /\[\d+\]: '(\S+)' \((.*)\)/.exec(line);
    if (format) {
      formats.push({ pixelFormat: format[1]!, description: format[2]!, sizes: [] });
      continue;
    }
    const size = /Size: \w+ (\d+)x(\d+)/.exec(line);
    if (size && formats.length > 0) {
      formats.at(-1)!.sizes.push({ width: Number(size[1]), height: Number(size[2]), fps: [] });
      continue;
    }
    const interval = /\(([\d.]+) fps\)/.exec(line);
    const sizes = formats.at(-1)?.sizes;
    if (interval && sizes && sizes.length > 0) sizes.at(-1)!.fps.push(Number(interval[1]));
  }
  return formats;
}

function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 5000, encoding: "utf8" }, (error, stdout, stderr) => {
      if (error) reject(new Error((stderr || error.message).trim().split("\n").at(-1)));
      else resolve(stdout);
    });
  });
}

export async function listDevices(devDir = "/dev"): Promise<DeviceList> {
  const names = await readdir(devDir).catch(() => [] as string[]);
  const v4l2ctl = findExecutable("v4l2-ctl");
  const video: VideoDevice[] = [];
  for (const name of names.filter((n) => /^video\d+$/.test(n)).sort(byNumber)) {
    const device: VideoDevice = { path: join(devDir, name) };
    const label = await readFile(`/sys/class/video4linux/${name}/name`, "utf8").catch(() => "");
    if (devDir === "/dev" && label.trim()) device.name = label.trim();
    if (v4l2ctl) {
      try {
        device.formats = parseV4l2Formats(
          await run(v4l2ctl, ["--device", device.path, "--list-formats-ext"]),
        );
      } catch (error) {
        device.error = (error as Error).message;
      }
    }
    video.push(device);
  }
  const serial = new Map<string, SerialDevice>();
  for (const name of names.filter((n) => SERIAL_NAMES.test(n)).sort(byNumber)) {
    serial.set(join(devDir, name), { path: join(devDir, name) });
  }
  // USB details through serialport, which asks udev (and fails badly without udevadm).
  if (devDir === "/dev" && (process.platform !== "linux" || findExecutable("udevadm"))) {
    const { SerialPort } = await import("serialport");
    for (const port of await SerialPort.list().catch(() => [])) {
      const known = serial.get(port.path);
      if (!known && process.platform === "linux" && !port.vendorId) continue; // built-in ttyS*
      serial.set(port.path, {
        path: port.path,
        manufacturer: port.manufacturer,
        vendorId: port.vendorId,
        productId: port.productId,
        serialNumber: port.serialNumber,
      });
    }
  }
  return { video, serial: [...serial.values()], v4l2ctl: v4l2ctl !== undefined };
}

/** The config entry for a camera, at its best MJPEG size (or its first format). */
export function cameraSnippet(device: VideoDevice): Record<string, unknown> {
  const options: Record<string, unknown> = { device: device.path };
  const mjpeg = device.formats?.find((f) => f.pixelFormat === "MJPG");
  const format = mjpeg ?? device.formats?.[0];
  const best = format?.sizes
    .filter((s) => s.width <= 1920)
    .sort((a, b) => b.width * b.height - a.width * a.height)[0];
  if (best) Object.assign(options, { width: best.width, height: best.height });
  if (best?.fps.length)
    options.fps = Math.max(...best.fps.filter((f) => f <= 30), Math.min(...best.fps));
  if (format && !mjpeg)
    options.inputFormat =
      format.pixelFormat === "YUYV" ? "yuyv422" : format.pixelFormat.toLowerCase();
  return { class: "labthings-ts/instruments#FfmpegCamera", options };
}

export function stageSnippet(port: SerialDevice): Record<string, unknown> {
  return { class: "labthings-ts/instruments#SangaboardStage", options: { port: port.path } };
}

function describeText(list: DeviceList): string {
  const lines: string[] = [];
  lines.push(list.video.length ? "Video devices:" : "Video devices: none (no /dev/video*)");
  for (const device of list.video) {
    lines.push(`  ${device.path}${device.name ? `  ${device.name}` : ""}`);
    if (device.error) lines.push(`    formats unknown: ${device.error}`);
    else if (device.formats?.length === 0)
      lines.push("    no capture formats (a metadata node, not a camera)");
    for (const format of device.formats ?? []) {
      const sizes = format.sizes
        .map((s) => `${s.width}x${s.height}${s.fps.length ? `@${s.fps.join("/")}` : ""}`)
        .join(" ");
      lines.push(`    ${format.pixelFormat} (${format.description}): ${sizes}`);
    }
    if (device.formats?.length !== 0)
      lines.push(`    "camera": ${JSON.stringify(cameraSnippet(device))}`);
  }
  if (list.video.length > 0 && !list.v4l2ctl) {
    lines.push("  (install v4l-utils for each camera's formats: sudo apt install v4l-utils)");
  }
  lines.push(list.serial.length ? "Serial ports:" : "Serial ports: none");
  for (const port of list.serial) {
    const usb = port.vendorId ? ` [${port.vendorId}:${port.productId}]` : "";
    const about = [port.manufacturer, port.serialNumber && `serial ${port.serialNumber}`]
      .filter(Boolean)
      .join(", ");
    lines.push(`  ${port.path}${usb}${about ? `  ${about}` : ""}`);
    lines.push(`    "stage": ${JSON.stringify(stageSnippet(port))}`);
  }
  return lines.join("\n");
}

export async function devices(args: string[]): Promise<void> {
  let values: { json?: boolean; dev?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        json: { type: "boolean" },
        dev: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    console.error(`labthings-ts devices: ${(error as Error).message}\n\n${DEVICES_USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (values.help) {
    console.log(DEVICES_USAGE);
    return;
  }
  const list = await listDevices(values.dev ?? "/dev");
  console.log(values.json ? JSON.stringify(list, null, 2) : describeText(list));
}
