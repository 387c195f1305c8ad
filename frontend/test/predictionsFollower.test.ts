// Following the classifier's predictions, against a fake api object and mocked timers.
import { mock, test } from "node:test";
import assert from "node:assert/strict";
import { ApiError, type PredictionsResponse } from "../src/api";
import { PREDICTIONS_POLL_MS, PredictionsFollower } from "../src/predictionsFollower";
import { deferred, flushPromises, loaded, settle } from "./fakes";

function answer(status: PredictionsResponse["status"], rows: number): PredictionsResponse {
  return {
    status,
    version: 1,
    classes: ["a", "b"],
    error: null,
    train_seconds: 0.1,
    predicted: new Array(rows).fill(1),
    confidence: new Array(rows).fill(0.8),
  };
}

test("predictions are asked for after the wait, again while the classifier trains, and no more once it is ready", async (t) => {
  mock.timers.enable({ apis: ["setTimeout"] });
  t.after(() => mock.timers.reset());
  const ctx = loaded(3);
  const answers = [answer("training", 3), answer("training", 3), answer("ready", 3)];
  let asked = 0;
  const follower = new PredictionsFollower({ predictions: async () => answers[asked++] }, ctx);
  follower.schedule(300);
  mock.timers.tick(299);
  await flushPromises();
  assert.equal(asked, 0, "not before the wait");
  mock.timers.tick(1);
  await flushPromises();
  assert.equal(asked, 1);
  assert.equal(ctx.store.get().predictions!.status, "training");
  mock.timers.tick(PREDICTIONS_POLL_MS);
  await flushPromises();
  assert.equal(asked, 2);
  mock.timers.tick(PREDICTIONS_POLL_MS);
  await flushPromises();
  assert.equal(asked, 3);
  const p = ctx.store.get().predictions!;
  assert.equal(p.status, "ready");
  assert.deepEqual(Array.from(p.predicted!), [1, 1, 1]);
  mock.timers.tick(10 * PREDICTIONS_POLL_MS);
  await flushPromises();
  assert.equal(asked, 3, "ready: following stops");
});

test("a newer request or a cancel drops an answer still on its way", async () => {
  const ctx = loaded(2);
  const first = deferred<PredictionsResponse>();
  const follower = new PredictionsFollower({ predictions: () => first.promise }, ctx);
  follower.schedule(0);
  await settle();
  follower.cancel();
  first.resolve(answer("ready", 2));
  await settle();
  assert.equal(ctx.store.get().predictions, null);
});

test("an old server without the classifier route is named as the cause; other failures give their message", async () => {
  const ctx = loaded(2);
  const follower = new PredictionsFollower({ predictions: async () => { throw new ApiError("no route active/predictions", 404, "active/predictions"); } }, ctx);
  follower.schedule(0);
  await settle();
  assert.equal(ctx.store.get().predictionsError, "this server has no classifier (update tensorboard-al).");
  const other = new PredictionsFollower({ predictions: async () => { throw new Error("network down"); } }, ctx);
  other.schedule(0);
  await settle();
  assert.equal(ctx.store.get().predictionsError, "network down");
});
