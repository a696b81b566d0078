/**
 * The MQTT binding: the server as a client of an MQTT broker (Mosquitto, or any MQTT 3.1.1
 * or 5 broker), fed by the same ObservationHub as SSE and websockets. It publishes every
 * property change (retained: a new subscriber gets the current value), event and
 * invocation status, and each Thing's TD (retained), so a consumer that reads the TD
 * subscribes at the broker and never touches the instrument. With `commands` on it also
 * takes writes and invocations, validated like HTTP ones.
 *
 * The broker is never in the way of HTTP: connecting, and reconnecting with backoff, run
 * in the background; while it is away property values are coalesced (the newest is
 * published, retained, on reconnect, with the TDs) and events and statuses wait in a
 * bounded queue (the oldest dropped, and counted); shutdown does not wait on a dead broker.
 */
import { randomBytes } from "node:crypto";
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from "mqtt";
import type { ThingLogger } from "../model/logger.js";
import { Backoff } from "../runtime/backoff.js";
import type { InvocationManager } from "../runtime/invocation-manager.js";
import type { Notification, ObservationHub } from "../runtime/observation-hub.js";
import { errorMessage, settleWithin } from "../runtime/settle.js";
import type { ThingRegistry } from "../runtime/thing-registry.js";
import { MqttForms, MqttTopics } from "./mqtt-topics.js";

export interface MqttOptions {
  /** The broker, e.g. `mqtt://127.0.0.1:1883` (`mqtts://` for TLS). */
  url: string;
  /** Every topic starts with this, e.g. `labthings/microscope-3`. */
  topicPrefix: string;
  username?: string;
  password?: string;
  /** Accept property writes and action invocations published by consumers. Default false. */
  commands?: boolean;
  /** The broker URL written into TD forms, when consumers reach it under another name. */
  advertisedUrl?: string;
  /** 5 (default) or 4 (MQTT 3.1.1, for older brokers). */
  protocolVersion?: 4 | 5;
  /** Events and statuses kept while the broker is away (the oldest are dropped). Default 1000. */
  maxQueued?: number;
  /** First and longest pause between reconnects. Default 1 s and 30 s. */
  retryMs?: { first: number; max: number };
}

/** Bytes the socket may hold unsent before the broker counts as too slow (treated as away). */
const CONGESTED_BYTES = 4 * 1024 * 1024;

interface Queued {
  topic: string;
  payload: string;
}

export interface MqttBindingContext {
  registry: ThingRegistry;
  hub: ObservationHub;
  invocations: InvocationManager;
  logger: ThingLogger;
}

/** The part of the server the binding needs once it listens. */
export interface MqttPublication {
  /** The server's public URL (with any prefix, no trailing slash). */
  publicUrl: string;
  /** A Thing's TD as JSON text (with the public base). */
  describe: (thing: string) => string;
}

export class MqttBinding {
  readonly topics: MqttTopics;
  readonly forms: MqttForms;
  readonly #options: MqttOptions;
  readonly #context: MqttBindingContext;
  readonly #backoff: Backoff;
  #client: MqttClient | undefined;
  #publication: MqttPublication | undefined;
  #unsubscribe: (() => void) | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  /** Newest value per retained topic not yet sent (coalesced). */
  readonly #pendingRetained = new Map<string, string>();
  readonly #queue: Queued[] = [];
  #dropped = 0;
  #closing = false;
  #awaitingDrain = false;
  #everConnected = false;
  #loggedDown = false;
  /** Messages published since start, for stats and benchmarks. */
  readonly stats = { published: 0, dropped: 0, commands: 0, connects: 0 };

  constructor(options: MqttOptions, context: MqttBindingContext) {
    this.#options = options;
    this.#context = context;
    this.#backoff = new Backoff(options.retryMs?.first ?? 1000, options.retryMs?.max ?? 30_000);
    this.topics = new MqttTopics(options.topicPrefix);
    this.forms = new MqttForms(this.topics, {
      brokerUrl: options.advertisedUrl ?? options.url,
      commands: options.commands ?? false,
      brokerCredentials: options.username !== undefined,
    });
  }

  /** Whether the broker connection is up now. */
  get connected(): boolean {
    return this.#client?.connected ?? false;
  }

  /** The broker URL without credentials, for logs. */
  get brokerUrl(): string {
    const url = new URL(this.#options.url);
    url.username = "";
    url.password = "";
    return url.href.replace(/\/$/, "");
  }

  /** Start publishing and connect in the background. Returns at once. */
  start(publication: MqttPublication): void {
    this.#publication = publication;
    this.#unsubscribe = this.#context.hub.subscribe(
      () => true,
      (notification) => this.#publishNotification(notification),
    );
    const options: IClientOptions = {
      clientId: `labthings-ts-${randomBytes(6).toString("hex")}`,
      protocolVersion: this.#options.protocolVersion ?? 5,
      username: this.#options.username,
      password: this.#options.password,
      clean: true,
      connectTimeout: 5000,
      // Reconnects are ours (with backoff), and nothing is queued inside MQTT.js.
      reconnectPeriod: 0,
      queueQoSZero: false,
      resubscribe: false,
      will: {
        topic: this.topics.status(),
        payload: Buffer.from(JSON.stringify({ online: false, url: publication.publicUrl })),
        retain: true,
        qos: 1,
      },
    };
    const client = mqtt.connect(this.#options.url, options);
    this.#client = client;
    client.on("connect", () => this.#onConnect());
    client.on("close", () => this.#onClose());
    client.on("error", (error) => this.#onError(error));
    client.on("message", (topic, payload, packet) => this.#onMessage(topic, payload, packet));
  }

  /**
   * Say goodbye (retained status `online: false`) if the broker is there, then disconnect.
   * Bounded by `timeoutMs`; a broker that is away is not waited for at all.
   */
  async close(timeoutMs: number): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#reconnectTimer);
    this.#unsubscribe?.();
    const client = this.#client;
    if (!client) return;
    if (client.connected) {
      const goodbye = client
        .publishAsync(this.topics.status(), this.#statusPayload(false), { retain: true, qos: 1 })
        .then(() => client.endAsync());
      const outcome = await settleWithin(goodbye, timeoutMs);
      if (outcome.kind === "fulfilled") return;
      this.#context.logger.warn(`MQTT: the broker did not take the goodbye within ${timeoutMs} ms`);
    }
    await settleWithin(client.endAsync(true), Math.max(1, Math.min(timeoutMs, 200)));
  }

  #onConnect(): void {
    const { logger } = this.#context;
    this.stats.connects++;
    this.#backoff.reset();
    this.#loggedDown = false;
    if (this.#everConnected)
      logger.info({ broker: this.brokerUrl }, "MQTT: reconnected to the broker");
    else
      logger.info(
        { broker: this.brokerUrl, prefix: this.topics.prefix },
        "MQTT: connected to the broker",
      );
    this.#everConnected = true;
    this.#publishState();
    if (this.#options.commands) {
      const subscribeOptions = { qos: 1 as const, ...(this.#protocol5 ? { rh: 2 as const } : {}) };
      this.#client
        ?.subscribeAsync(this.topics.commandFilters(), subscribeOptions)
        .catch((error: unknown) =>
          logger.error({ err: errorMessage(error) }, "MQTT: could not subscribe to command topics"),
        );
    }
  }

  get #protocol5(): boolean {
    return (this.#options.protocolVersion ?? 5) === 5;
  }

  /** Everything retained, from the source (TDs, status, every current value), then the queue. */
  #publishState(): void {
    const publication = this.#publication;
    if (!publication) return;
    const { registry } = this.#context;
    this.#raw(this.topics.status(), this.#statusPayload(true), true);
    for (const exposed of registry.values()) {
      this.#raw(this.topics.description(exposed.name), publication.describe(exposed.name), true);
      for (const property of exposed.properties.values()) {
        if (!property.readable || !property.declaration.observable) continue;
        const topic = this.topics.property(exposed.name, property.name);
        this.#pendingRetained.delete(topic);
        try {
          this.#raw(topic, JSON.stringify(exposed.readProperty(property.name) ?? null), true);
        } catch (error) {
          this.#context.logger.warn(
            { thing: exposed.name, property: property.name, err: errorMessage(error) },
            "MQTT: could not read a property to publish it",
          );
        }
      }
    }
    this.#flush();
  }

  #statusPayload(online: boolean): string {
    const publication = this.#publication;
    return JSON.stringify({
      online,
      url: publication?.publicUrl,
      things: this.#context.registry.names,
    });
  }

  #onClose(): void {
    this.#awaitingDrain = false; // that socket is gone; the next one starts afresh
    if (this.#closing) return;
    const { logger } = this.#context;
    const pause = this.#backoff.next();
    if (!this.#loggedDown) {
      logger.warn(
        { broker: this.brokerUrl, retryMs: pause },
        this.#everConnected
          ? "MQTT: lost the broker; HTTP goes on, reconnecting with backoff"
          : "MQTT: cannot reach the broker; HTTP goes on, retrying with backoff",
      );
      this.#loggedDown = true;
    }
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => {
      if (!this.#closing) this.#client?.reconnect();
    }, pause);
    this.#reconnectTimer.unref();
  }

  #onError(error: Error): void {
    // Refusals (bad credentials, not authorised) say why; connection errors repeat while down.
    const code = (error as { code?: unknown }).code;
    const level = typeof code === "number" && !this.#loggedDown ? "error" : "debug";
    this.#context.logger[level]({ broker: this.brokerUrl, err: error.message, code }, "MQTT error");
  }

  #publishNotification(notification: Notification): void {
    const { thing, kind, name } = notification;
    if (kind === "property") {
      this.#send(
        this.topics.property(thing, name),
        JSON.stringify(notification.data ?? null),
        true,
      );
    } else if (kind === "event") {
      this.#send(this.topics.event(thing, name), JSON.stringify(notification.data ?? null), false);
    } else if (notification.invocation && this.#publication) {
      const invocation = notification.invocation;
      const href = `${this.#publication.publicUrl}/action_invocations/${invocation.id}`;
      this.#send(
        this.topics.actionStatus(thing, name),
        JSON.stringify(invocation.toStatus(href)),
        false,
      );
    }
  }

  /** Publish now when the broker takes it; otherwise coalesce (retained) or queue (bounded). */
  #send(topic: string, payload: string, retain: boolean): void {
    if (this.#writable()) {
      this.#raw(topic, payload, retain);
      return;
    }
    if (retain) {
      this.#pendingRetained.set(topic, payload);
      return;
    }
    this.#queue.push({ topic, payload });
    const max = this.#options.maxQueued ?? 1000;
    if (this.#queue.length > max) {
      this.#queue.shift();
      this.#dropped++;
      this.stats.dropped++;
    }
  }

  #writable(): boolean {
    const client = this.#client;
    if (!client?.connected) return false;
    const stream = client.stream as { writableLength?: number } | undefined;
    if ((stream?.writableLength ?? 0) <= CONGESTED_BYTES) return true;
    // Too slow a broker: wait for the socket to drain (one listener), then send what waits.
    if (!this.#awaitingDrain) {
      this.#awaitingDrain = true;
      (client.stream as NodeJS.EventEmitter).once("drain", () => {
        this.#awaitingDrain = false;
        this.#flush();
      });
    }
    return false;
  }

  #flush(): void {
    for (const [topic, payload] of this.#pendingRetained) {
      if (!this.#writable()) return;
      this.#pendingRetained.delete(topic);
      this.#raw(topic, payload, true);
    }
    while (this.#queue.length > 0 && this.#writable()) {
      const next = this.#queue.shift()!;
      this.#raw(next.topic, next.payload, false);
    }
    if (this.#dropped > 0) {
      this.#context.logger.warn(
        { dropped: this.#dropped, kept: this.#options.maxQueued ?? 1000 },
        "MQTT: events and statuses were dropped while the broker was away (queue full)",
      );
      this.#dropped = 0;
    }
  }

  #raw(topic: string, payload: string, retain: boolean): void {
    this.stats.published++;
    this.#client?.publish(topic, payload, { qos: 0, retain }, (error) => {
      if (error) this.#context.logger.debug({ topic, err: error.message }, "MQTT publish failed");
    });
  }

  #onMessage(topic: string, payload: Buffer, packet: IPublishPacket): void {
    // A retained command is a replay of an old one (MQTT 3.1.1 brokers send it on subscribe).
    if (packet.retain) return;
    const command = this.topics.parseCommand(topic);
    if (!command) return;
    this.stats.commands++;
    const { registry, invocations, logger } = this.#context;
    const responseTopic = packet.properties?.responseTopic;
    const correlationData = packet.properties?.correlationData;
    const reply = (body: unknown) => {
      if (!responseTopic) return;
      this.#client?.publish(responseTopic, JSON.stringify(body), {
        qos: 0,
        properties: correlationData ? { correlationData } : {},
      });
    };
    try {
      const exposed = registry.get(command.thing);
      const text = payload.toString("utf8");
      let value: unknown;
      if (text.trim() !== "") {
        try {
          value = JSON.parse(text);
        } catch {
          throw new SyntaxError(`the payload is not JSON: ${text.slice(0, 80)}`);
        }
      }
      if (command.kind === "write") {
        exposed.writeProperty(command.name, value);
        reply({ status: 204 });
        return;
      }
      const invocation = invocations.invoke(exposed, command.name, value);
      if (responseTopic && this.#publication) {
        const href = `${this.#publication.publicUrl}/action_invocations/${invocation.id}`;
        reply(invocation.toStatus(href));
        const stop = invocation.onChange((changed) => {
          reply(changed.toStatus(href));
          if (changed.finished) stop();
        });
      }
    } catch (error) {
      const status = (error as { status?: unknown }).status;
      const problem = {
        title: error instanceof SyntaxError ? "Bad Request" : ((error as Error).name ?? "Error"),
        status: typeof status === "number" ? status : 400,
        detail: errorMessage(error),
        instance: topic,
      };
      logger.warn({ topic, problem }, `MQTT: refused a command on ${topic}: ${problem.detail}`);
      reply(problem);
    }
  }
}
