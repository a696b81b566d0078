/**
 * Headless Chromium for browser tests: Debian's `/usr/bin/chromium` driven by
 * playwright-core (which never downloads a browser here), with the flags that keep it
 * from reaching the network on its own.
 */
import { type Browser, chromium } from "playwright-core";
import { within } from "./within.js";

export const CHROMIUM_PATH = "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** Launch headless Chromium (`extraArgs` after the flags above); close it in afterAll. */
export function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS, ...extraArgs] });
}

/**
 * Run `use` with a fresh headless Chromium, closed afterwards whatever happens; launching
 * and closing are bounded.
 *
 * @example
 * ```ts
 * await withChromium(async (browser) => {
 *   const page = await browser.newPage();
 *   await page.goto(url);
 * });
 * ```
 */
export async function withChromium(
  use: (browser: Browser) => Promise<void>,
  extraArgs: readonly string[] = [],
): Promise<void> {
  const browser = await within(launchChromium(extraArgs), "Chromium to launch");
  try {
    await use(browser);
  } finally {
    await within(browser.close(), "Chromium to close");
  }
}
