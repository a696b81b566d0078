import type { FastifyInstance } from "fastify";
import type { SettingsFileStatus, SettingsStore } from "../../runtime/settings-store.js";
import { guardMethods } from "../method-guard.js";
import { sendJson } from "../send-json.js";

/** What `GET /settings/` answers. */
export interface SettingsReport {
  /** Settings are written to files (a settings folder is configured). */
  persisted: boolean;
  folder: string | null;
  /** Every setting of every Thing is on disk as it is now. */
  saved: boolean;
  /** Per Thing with settings: its file, whether it is saved, and why not while saves fail. */
  things: Record<string, Omit<SettingsFileStatus, "thing">>;
}

/**
 * `GET /settings/`: whether every setting is on disk, and while saves fail (read-only
 * folder, full disk) which Thing, which file, the system error and the next attempt, so a
 * dashboard can say so for as long as it lasts.
 */
export function registerSettingsStatusRoute(app: FastifyInstance, settings: SettingsStore): void {
  app.get(
    "/settings/",
    {
      schema: {
        tags: ["server"],
        summary: "Whether every setting is saved; the error while saving a file fails",
      },
    },
    async (_request, reply) => {
      const statuses = settings.status();
      const report: SettingsReport = {
        persisted: settings.folder !== undefined,
        folder: settings.folder ?? null,
        saved: statuses.every((status) => status.saved),
        things: Object.fromEntries(statuses.map(({ thing, ...status }) => [thing, status])),
      };
      return sendJson(reply, report);
    },
  );
  guardMethods(app, "/settings/", ["GET"], "/settings/");
}
