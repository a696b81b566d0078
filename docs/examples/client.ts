import { writeFile } from "node:fs/promises";
// #region client
import { type BlobReference, HttpError, ThingClient } from "labthings-ts/client";

export async function driveMicroscope(base: string, token?: string) {
  const stage = await ThingClient.connect(`${base}/stage/`, {
    headers: token ? { authorization: `Bearer ${token}` } : {}, // when the server wants one
  });
  await stage.writeProperty("speed", 5000);
  console.log(await stage.readAllProperties());

  // Each change over SSE; a dropped connection is re-opened with Last-Event-ID.
  const watching = new AbortController();
  void (async () => {
    for await (const position of stage.observeProperty("position", { signal: watching.signal }))
      console.log(position);
  })();

  // 201 + Location: the handle follows the invocation (its SSE stream, else polling).
  const move = await stage.invokeAction(
    "moveRelative",
    { x: 1000 },
    {
      signal: AbortSignal.timeout(30_000), // aborting cancels on the server
      onProgress: ({ fraction, log }) =>
        console.log(
          fraction,
          log.map((r) => r.message),
        ),
    },
  );
  await move.result(); // throws InvocationFailedError / InvocationCancelledError

  const camera = await ThingClient.connect(`${base}/camera/`);
  const capture = await camera.invokeAction<BlobReference>("capture");
  const { bytes } = await camera.downloadBlob(await capture.result()); // the JPEG
  await writeFile("capture.jpg", bytes);
  const still = await camera.snapshot("stream"); // the newest frame of the live view
  try {
    await camera.writeProperty("exposureTime", 2_000_000);
  } catch (error) {
    if (error instanceof HttpError) console.log(error.status, error.problem?.errors); // 400, [{ field, rule, … }]
  }
  watching.abort();
  return { bytes, still };
}
// #endregion client
