/** The Thing model on its own: no server, no HTTP. */
import { describe, expect, it } from "vitest";
import {
  ExposedThing,
  InvalidInputError,
  MethodNotAllowedError,
  observeProperties,
  property,
  Thing,
  ThingDefinitionError,
  ThingLifecycleError,
  Type,
  thingSlot,
} from "../src/index.js";
import { silentLogger } from "../src/model/logger.js";
import { SchemaValidator } from "../src/model/schema-validator.js";
import { ThingRegistry } from "../src/runtime/thing-registry.js";

class Heater extends Thing {
  static override title = "Heater";

  @property({ schema: Type.Number({ minimum: 0, maximum: 100 }), title: "Set point" })
  accessor setPoint = 20;

  @property({ schema: Type.Number(), readOnly: true })
  accessor temperature = 18.5;

  @property({ schema: Type.String({ minLength: 4 }), writeOnly: true })
  accessor password = "secret";

  @property({
    schema: Type.Object({ p: Type.Number(), i: Type.Number() }, { additionalProperties: false }),
  })
  accessor gains = { p: 1, i: 0.1 };

  #mode = "off";
  @property({ schema: Type.Union([Type.Literal("off"), Type.Literal("on")]) })
  get mode(): "off" | "on" {
    return this.#mode as "off" | "on";
  }
  set mode(value: "off" | "on") {
    this.#mode = value;
  }

  @property({ schema: Type.Number() })
  get error(): number {
    return this.setPoint - this.temperature;
  }

  warm(): void {
    this.temperature += 1; // the Thing's own code may write a read-only property
  }
}

const expose = (thing: Thing) => new ExposedThing("heater", thing, new SchemaValidator());

describe("properties", () => {
  it("start from the field's initial value and notify observers on assignment", () => {
    const heater = new Heater();
    const seen: [string, unknown][] = [];
    const stop = observeProperties(heater, (name, value) => seen.push([name, value]));
    heater.warm();
    heater.setPoint = 30;
    heater.setPoint = 30; // same primitive: no second notification
    heater.gains = { p: 2, i: 0 };
    stop();
    heater.setPoint = 31;
    expect(seen).toEqual([
      ["temperature", 19.5],
      ["setPoint", 30],
      ["gains", { p: 2, i: 0 }],
    ]);
  });

  it("validate every network write and leave the value unchanged on error", () => {
    const heater = new Heater();
    const exposed = expose(heater);
    exposed.writeProperty("setPoint", 55);
    expect(heater.setPoint).toBe(55);
    const bad = () => exposed.writeProperty("setPoint", 101);
    expect(bad).toThrow(InvalidInputError);
    try {
      bad();
    } catch (error) {
      expect((error as InvalidInputError).errors).toEqual([
        { field: "/setPoint", rule: "maximum", message: "must be <= 100" },
      ]);
    }
    expect(() => exposed.writeProperty("setPoint", "55")).toThrow(/must be number/);
    expect(() => exposed.writeProperty("gains", { p: 1 })).toThrow(
      /\/gains must have required property 'i'/,
    );
    expect(heater.setPoint).toBe(55);
    expect(heater.gains).toEqual({ p: 1, i: 0.1 });
  });

  it("refuse network writes to read-only and reads of write-only properties", () => {
    const exposed = expose(new Heater());
    expect(() => exposed.writeProperty("temperature", 1)).toThrow(MethodNotAllowedError);
    expect(() => exposed.readProperty("password")).toThrow(MethodNotAllowedError);
    expect(exposed.readAllProperties()).not.toHaveProperty("password");
    exposed.writeProperty("password", "hunter22");
  });

  it("support computed properties: a getter with a setter is writable, without one read-only", () => {
    const heater = new Heater();
    const exposed = expose(heater);
    const seen: unknown[] = [];
    observeProperties(heater, (name, value) => seen.push([name, value]));
    exposed.writeProperty("mode", "on");
    expect(heater.mode).toBe("on");
    expect(seen).toEqual([["mode", "on"]]);
    expect(() => exposed.writeProperty("mode", "boost")).toThrow(InvalidInputError);
    expect(exposed.property("error").writable).toBe(false);
    expect(exposed.readProperty("error")).toBe(1.5);
  });

  it("write several properties all-or-nothing", () => {
    const heater = new Heater();
    const exposed = expose(heater);
    expect(() =>
      exposed.writeMultipleProperties({ setPoint: 40, gains: { p: "x", i: 0 } }),
    ).toThrow(InvalidInputError);
    expect(heater.setPoint).toBe(20);
    expect(() => exposed.writeMultipleProperties({ setPoint: 40, nope: 1 })).toThrow(/nope/);
    expect(heater.setPoint).toBe(20);
    exposed.writeMultipleProperties({ setPoint: 40, mode: "on" });
    expect([heater.setPoint, heater.mode]).toEqual([40, "on"]);
  });
});

describe("definition errors", () => {
  it("reject two affordances with the same name when the class is defined", () => {
    expect(() => {
      class Clash extends Thing {
        @property({ schema: Type.Number() }) accessor speed = 1;
        @property({ schema: Type.Number(), name: "speed" }) accessor velocity = 2;
      }
      return Clash;
    }).toThrow(ThingDefinitionError);
  });

  it("reject reserved and non-URL-safe names", () => {
    expect(() => {
      class Reserved extends Thing {
        @property({ schema: Type.Number() }) accessor properties = 1;
      }
      return Reserved;
    }).toThrow(/reserved/);
    expect(() => {
      class Spaces extends Thing {
        @property({ schema: Type.Number(), name: "set point" }) accessor setPoint = 1;
      }
      return Spaces;
    }).toThrow(/not a valid affordance name/);
  });

  it("let a subclass inherit and add affordances without touching the parent", () => {
    class Boiler extends Heater {
      @property({ schema: Type.Boolean() }) accessor pumpOn = false;
    }
    expect([...expose(new Boiler()).properties.keys()]).toContain("pumpOn");
    expect([...expose(new Boiler()).properties.keys()]).toContain("setPoint");
    expect([...expose(new Heater()).properties.keys()]).not.toContain("pumpOn");
  });
});

// Compile-time checks: `npm run lint` (tsc) fails if any of these stop being errors.
function typeChecks(heater: Heater): void {
  // @ts-expect-error the Thing's own writes are type-checked against the schema
  heater.setPoint = "hot";
  class Mismatch extends Thing {
    // @ts-expect-error a field whose type does not match its schema does not compile
    @property({ schema: Type.Number() }) accessor label = "text";
  }
  void Mismatch;
}
void typeChecks; // never called: it only has to compile

class Lamp extends Thing {
  @property({ schema: Type.Boolean() }) accessor on = false;
  log: string[] = [];
  override async start() {
    this.log.push(`start ${this.name}`);
  }
  override async stop() {
    this.log.push(`stop ${this.name}`);
  }
}

class Controller extends Thing {
  @thingSlot(Lamp) accessor lamp!: Lamp;
}

class Watcher extends Thing {
  @thingSlot(Controller) accessor controller!: Controller;
  @thingSlot(Lamp, { optional: true }) accessor spare: Lamp | undefined;
}

describe("slots and lifecycle", () => {
  it("fill a slot with the one Thing of its class, usable directly in unit tests too", () => {
    const lamp = new Lamp();
    const controller = new Controller();
    new ThingRegistry(
      [
        { name: "controller", thing: controller },
        { name: "lamp", thing: lamp },
      ],
      silentLogger,
    );
    expect(controller.lamp).toBe(lamp);
    const standalone = new Controller();
    expect(() => standalone.lamp).toThrow(/slot 'lamp' of Thing 'Controller' is not connected/);
    standalone.lamp = lamp;
    expect(standalone.lamp).toBe(lamp);
  });

  it("say which slot cannot be filled, or which Things make it ambiguous", () => {
    expect(
      () => new ThingRegistry([{ name: "controller", thing: new Controller() }], silentLogger),
    ).toThrow(
      /Thing 'controller' failed to connect: slot 'lamp' needs a Lamp, and this server has none/,
    );
    const ambiguous = () =>
      new ThingRegistry(
        [
          { name: "controller", thing: new Controller() },
          { name: "left", thing: new Lamp() },
          { name: "right", thing: new Lamp() },
        ],
        silentLogger,
      );
    expect(ambiguous).toThrow(ThingLifecycleError);
    expect(ambiguous).toThrow(/several match \(left, right\).*things\.controller\.slots\.lamp/);
    const right = new Lamp();
    const controller = new Controller();
    new ThingRegistry(
      [
        { name: "controller", thing: controller, slots: { lamp: "right" } },
        { name: "left", thing: new Lamp() },
        { name: "right", thing: right },
      ],
      silentLogger,
    );
    expect(controller.lamp).toBe(right);
    expect(
      () =>
        new ThingRegistry(
          [
            { name: "controller", thing: new Controller(), slots: { lamp: "other" } },
            { name: "other", thing: new Heater() },
          ],
          silentLogger,
        ),
    ).toThrow(/slot 'lamp' needs a Lamp but 'other' is a Heater/);
  });

  it("start Things after the Things in their slots and stop them in reverse", async () => {
    const log: string[] = [];
    const lamp = new Lamp();
    lamp.log = log;
    const registry = new ThingRegistry(
      [
        { name: "watcher", thing: new Watcher() },
        { name: "controller", thing: new Controller() },
        { name: "lamp", thing: lamp },
      ],
      silentLogger,
    );
    expect(registry.startOrder()).toEqual(["lamp", "controller", "watcher"]);
    // The optional slot is filled when a Thing of its class exists.
    expect((registry.get("watcher").thing as Watcher).spare).toBe(lamp);
    await registry.startAll();
    await registry.stopAll(1000);
    expect(log).toEqual(["start lamp", "stop lamp"]);
  });

  it("bound a stop() that never returns and name the Thing", async () => {
    class Stuck extends Thing {
      override stop() {
        return new Promise<void>(() => {});
      }
    }
    const lamp = new Lamp();
    const registry = new ThingRegistry(
      [
        { name: "stuck", thing: new Stuck() },
        { name: "lamp", thing: lamp },
      ],
      silentLogger,
    );
    await registry.startAll();
    const started = performance.now();
    const report = await registry.stopAll(50);
    expect(report.hung).toEqual(["stuck"]);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(lamp.log).toContain("stop lamp"); // the hung one did not block the rest
  });

  it("stop what was started when a later Thing fails to start, and name the failure", async () => {
    class Broken extends Thing {
      @thingSlot(Lamp) accessor lamp!: Lamp;
      override async start() {
        throw new Error("no USB device");
      }
    }
    const lamp = new Lamp();
    const registry = new ThingRegistry(
      [
        { name: "broken", thing: new Broken() },
        { name: "lamp", thing: lamp },
      ],
      silentLogger,
    );
    await expect(registry.startAll()).rejects.toThrow(
      "Thing 'broken' failed to start: no USB device",
    );
    expect(lamp.log).toEqual(["start lamp", "stop lamp"]);
  });

  it("with continueOnFailure, set aside a Thing that fails to start and the Things whose slots hold it", async () => {
    class Flaky extends Lamp {
      override async start() {
        throw new Error("no USB device");
      }
    }
    class NeedsLamp extends Thing {
      @thingSlot(Lamp) accessor lamp!: Lamp;
      started = false;
      override async start() {
        this.started = true;
      }
    }
    class Independent extends Thing {
      started = false;
      override async start() {
        this.started = true;
      }
    }
    const dependent = new NeedsLamp();
    const independent = new Independent();
    const registry = new ThingRegistry(
      [
        { name: "dependent", thing: dependent },
        { name: "lamp", thing: new Flaky() },
        { name: "other", thing: independent },
      ],
      silentLogger,
    );
    await registry.startAll(1000, { continueOnFailure: true });
    expect(Object.fromEntries(registry.failed)).toEqual({
      lamp: "no USB device",
      dependent: "it needs 'lamp', which failed to start",
    });
    expect(dependent.started).toBe(false);
    expect(independent.started).toBe(true);
    expect(registry.names).toEqual(["other"]);
    expect(registry.has("lamp")).toBe(false);
  });
});
