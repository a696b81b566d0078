/**
 * A warning at the top of the page for as long as this server cannot save settings (a
 * read-only folder, a full disk): which Thing, which file, the system error. The server
 * answers every change 204 and keeps retrying; without this the person at the
 * microscope would not know their settings are only in memory. Polls `GET /settings/`.
 */
import type { OriginAccess } from "./access-tokens.js";
import { h } from "./dom.js";

/** How often the page asks whether settings are saved. */
const POLL_MS = 3000;

interface SettingsReport {
  saved: boolean;
  things: Record<string, { file: string; saved: boolean; error?: { message: string } }>;
}

/**
 * Show the alert in `container` while `settingsUrl` reports a failing save, until `signal`
 * aborts. A server without the resource (another implementation) shows nothing.
 */
export function watchSettings(
  container: HTMLElement,
  settingsUrl: string,
  access: OriginAccess,
  signal: AbortSignal,
): void {
  const alert = h("div", { class: "problem settings-alert", role: "alert", hidden: true });
  container.prepend(alert);
  const check = async () => {
    try {
      const response = await access.fetch(settingsUrl, {
        headers: { accept: "application/json" },
        signal,
      });
      if (!response.ok) return;
      const report = (await response.json()) as SettingsReport;
      const failing = Object.entries(report.things).filter(([, thing]) => thing.error);
      alert.hidden = failing.length === 0;
      alert.replaceChildren(
        ...failing.map(([name, thing]) =>
          h(
            "p",
            { "data-settings-failing": name },
            `Settings of ${name} are NOT saved to ${thing.file}: ${thing.error?.message} (the server keeps trying; they are lost if it stops now).`,
          ),
        ),
      );
    } catch {
      // Offline or stopping: the rest of the page says so.
    }
  };
  void check();
  const timer = setInterval(() => void check(), POLL_MS);
  signal.addEventListener("abort", () => clearInterval(timer), { once: true });
}
