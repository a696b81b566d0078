import { type ActionContext, action, property, Thing, Type } from "labthings-ts";
import { SerialLineDevice } from "labthings-ts/instruments";

export class SyringePump extends Thing {
  static options = Type.Object({ port: Type.String() });
  #pump: SerialLineDevice | undefined;
  constructor(readonly options: { port: string }) {
    super();
  }

  @property({ schema: Type.Boolean(), readOnly: true }) accessor connected = false;
  @property({ schema: Type.Number({ unit: "ml/min" }), readOnly: true }) accessor rate = 0;

  override async start() {
    this.#pump = new SerialLineDevice({
      path: this.options.port,
      baudRate: 9600,
      timeoutMs: 500,
      errorReply: /^ERR/,
      logger: this.logger,
      onConnect: async (line) => {
        this.rate = Number(await line.query("RAT?", { expect: /^[\d.]+$/ }));
      },
      onStatus: ({ connected, error }) => {
        this.connected = connected;
        if (connected) this.markAvailable();
        else this.markUnavailable(`pump on ${this.options.port} is not connected (${error})`);
      },
    });
    await this.#pump.open(); // resolves after the first attempt; retries in the background
  }
  override async stop() {
    await this.#pump?.close();
  }

  @action({ input: Type.Object({ ml: Type.Number({ exclusiveMinimum: 0 }) }) })
  async dispense({ ml }: { ml: number }, ctx: ActionContext) {
    await this.#pump!.query(`VOL ${ml}`, { signal: ctx.signal });
    await this.#pump!.query("RUN", { signal: ctx.signal });
    try {
      while ((await this.#pump!.query("STA?", { expect: /^(RUN|IDLE)$/ })) === "RUN")
        await ctx.sleep(100);
    } finally {
      if (ctx.signal.aborted) await this.#pump!.query("STP"); // cancelling stops the pump
    }
  }
}
