/**
 * The server's own Thing Description, served at `/.well-known/wot` (W3C WoT Discovery,
 * "Well-Known URIs": a request there MUST return a TD). A labthings-ts server hosts several
 * Things, so its TD describes the server and links each Thing's TD (`rel: "item"`, RFC
 * 6573), its dashboard and its API docs; every Thing's TD links back (`rel: "collection"`).
 */
import { type SecurityScheme, TD_CONTEXT, TD_MEDIA_TYPE } from "./thing-description.js";

export const WELL_KNOWN_PATH = "/.well-known/wot";

export interface ServerDescriptionInput {
  id: string;
  title: string;
  /** Names of the Things served, in serving order. */
  things: readonly string[];
  securityDefinitions: Record<string, SecurityScheme>;
}

/** Builds the server's TD for a base URL (the server's root, ending in `/`). */
export class ServerDescription {
  constructor(private readonly input: ServerDescriptionInput) {}

  describe(base: string): Record<string, unknown> {
    const { id, title, things, securityDefinitions } = this.input;
    return {
      "@context": [TD_CONTEXT],
      id,
      title,
      description: `The Things this server hosts (${things.length}): each linked below with rel "item".`,
      base,
      securityDefinitions,
      security: Object.keys(securityDefinitions),
      properties: {},
      actions: {},
      events: {},
      links: [
        ...things.map((name) => ({ href: `${name}/`, rel: "item", type: TD_MEDIA_TYPE })),
        { href: "./", rel: "alternate", type: "text/html" },
        { href: "docs", rel: "service-doc", type: "text/html" },
      ],
    };
  }
}

/** The link every Thing's TD carries to the server's TD. */
export const COLLECTION_LINK = {
  href: WELL_KNOWN_PATH,
  rel: "collection",
  type: TD_MEDIA_TYPE,
} as const;
