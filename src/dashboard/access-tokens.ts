/**
 * Bearer tokens for servers that require them, one per origin, kept in sessionStorage
 * (gone when the tab closes). Requests to an origin carry its token in `Authorization`;
 * `<img>` streams cannot send headers, so their URLs carry it as `access_token`. A token
 * is never sent to another origin (the page may show other servers' Things), and a Thing
 * Description's client gets `forOrigin(its origin)`: it cannot reach any other origin at
 * all, so a TD can never make the page send this server's token (or anything) here.
 */

const STORAGE_PREFIX = "labthings-ts token ";

export type FetchFunction = (
  input: string | URL | Request,
  init?: RequestInit,
) => Promise<Response>;

/** A URL with the origin's token added, for `<img>` and links (which cannot send headers). */
export interface TokenUrls {
  withAccessToken(url: string): string;
}

/** Requests that may go to one origin only, with that origin's token. */
export interface OriginAccess extends TokenUrls {
  readonly origin: string;
  readonly fetch: FetchFunction;
}

/** A request the page refuses to send: it would leave the Thing's own origin. */
export class RefusedRequestError extends Error {
  override name = "RefusedRequestError";
}

const SAFE_METHODS = new Set(["GET", "HEAD"]);

export class AccessTokens implements TokenUrls {
  readonly #storage: Storage;
  readonly #unauthorised = new Set<(origin: string) => void>();

  constructor(storage: Storage) {
    this.#storage = storage;
  }

  get(origin: string): string | undefined {
    return this.#storage.getItem(STORAGE_PREFIX + origin) ?? undefined;
  }

  set(origin: string, token: string): void {
    if (token === "") this.#storage.removeItem(STORAGE_PREFIX + origin);
    else this.#storage.setItem(STORAGE_PREFIX + origin, token);
  }

  /**
   * Take a token given in the page URL (`#token=…`) for this page's origin, and remove it
   * from the address bar and history so it is not copied or bookmarked by accident.
   */
  adoptFromLocation(location: Location, history: History): void {
    const fragment = new URLSearchParams(location.hash.slice(1));
    const token = fragment.get("token");
    if (token === null) return;
    this.set(location.origin, token);
    fragment.delete("token");
    const rest = fragment.toString();
    history.replaceState(
      history.state,
      "",
      `${location.pathname}${location.search}${rest ? `#${rest}` : ""}`,
    );
  }

  /** Be told when a server answers 401 (its origin), e.g. to ask for a token. */
  onUnauthorised(listener: (origin: string) => void): void {
    this.#unauthorised.add(listener);
  }

  /**
   * A `fetch` that adds the token of the request's origin and reports 401 answers.
   *
   * @example
   * ```ts
   * const client = await ThingClient.connect(url, { fetch: tokens.fetch });
   * ```
   */
  readonly fetch: FetchFunction = async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input), document.baseURI);
    const token = this.get(url.origin);
    let request = init;
    if (token !== undefined) {
      const headers = new Headers(
        init?.headers ?? (input instanceof Request ? input.headers : undefined),
      );
      headers.set("authorization", `Bearer ${token}`);
      request = { ...init, headers };
    }
    const response = await globalThis.fetch(input, request);
    if (response.status === 401) for (const listener of this.#unauthorised) listener(url.origin);
    return response;
  };

  /**
   * Access for the clients of one origin's Things: a fetch that refuses every URL of
   * another origin (and a redirect to one), and adds only that origin's token.
   */
  forOrigin(origin: string): OriginAccess {
    const outside = (url: URL) =>
      new RefusedRequestError(
        `refused: ${url.href} is not on ${origin}, where this Thing Description came from`,
      );
    const fetchWithin: FetchFunction = async (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input), document.baseURI);
      if (url.origin !== origin) throw outside(url);
      const method = (
        init?.method ?? (input instanceof Request ? input.method : "GET")
      ).toUpperCase();
      // A redirect could carry an unsafe request elsewhere; a read's answer is checked below.
      const safe = SAFE_METHODS.has(method);
      const response = await this.fetch(input, { ...init, redirect: safe ? "follow" : "error" });
      if (response.url !== "" && new URL(response.url).origin !== origin) {
        await response.body?.cancel().catch(() => {});
        throw outside(new URL(response.url));
      }
      return response;
    };
    return {
      origin,
      fetch: fetchWithin,
      withAccessToken: (url) => {
        const parsed = new URL(url, document.baseURI);
        if (parsed.origin !== origin) throw outside(parsed);
        return this.withAccessToken(parsed.href);
      },
    };
  }

  /** `url` with `access_token` added when its origin has a token (for `<img>` and links). */
  withAccessToken(url: string): string {
    const parsed = new URL(url, document.baseURI);
    const token = this.get(parsed.origin);
    if (token === undefined) return parsed.href;
    parsed.searchParams.set("access_token", token);
    return parsed.href;
  }
}
