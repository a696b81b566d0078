/**
 * A consumer that knows only a Thing's TD, and takes even that from the MQTT broker: it
 * reads the retained TD at `<topic>`, consumes it with node-wot holding only its MQTT
 * binding (so it cannot reach the instrument over HTTP), and observes one property through
 * the broker. Prints `{"ready":true}` once observing, then `{"value": …}` per change.
 * Usage: node td-only-consumer.mjs <broker url> <td topic> <property>
 */
import mqttBinding from "@node-wot/binding-mqtt";
import { Servient } from "@node-wot/core";
import mqtt from "mqtt";

const [brokerUrl, tdTopic, property] = process.argv.slice(2);
const print = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);
setTimeout(() => process.exit(3), 60_000).unref();

const client = await mqtt.connectAsync(brokerUrl, { reconnectPeriod: 0 });
const td = await new Promise((resolve) => {
  client.on("message", (_topic, payload) => resolve(JSON.parse(payload.toString())));
  void client.subscribeAsync(tdTopic);
});
await client.endAsync();

const servient = new Servient();
servient.addClientFactory(new mqttBinding.MqttClientFactory());
const WoT = await servient.start();
const thing = await WoT.consume(td);
await thing.observeProperty(property, async (output) => print({ value: await output.value() }));
print({ ready: true, title: td.title, id: td.id });
process.once("SIGTERM", () => void servient.shutdown().finally(() => process.exit(0)));
