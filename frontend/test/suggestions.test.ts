// Active-learning suggestions, against a fake api object.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ApiError, type PredictionsResponse, type SuggestResponse } from "../src/api";
import { PredictionsFollower } from "../src/predictionsFollower";
import { SelectionController } from "../src/selectionController";
import { SuggestionsController, type SuggestionsApi } from "../src/suggestions";
import { deferred, loaded, settle, type TestContext } from "./fakes";

function setup(suggest: SuggestionsApi["suggest"], ctx: TestContext = loaded(10)) {
  let generation = 0;
  let predictionAsks = 0;
  const predictions = new PredictionsFollower(
    {
      predictions: async (): Promise<PredictionsResponse> => {
        predictionAsks++;
        return { status: "ready", version: 1, classes: [], error: null, train_seconds: 0 };
      },
    },
    ctx,
  );
  const selection = new SelectionController(ctx);
  const revealed: [number, boolean][] = [];
  selection.onReveal((row, zoom) => revealed.push([row, zoom]));
  const suggestions = new SuggestionsController({ suggest }, ctx, selection, predictions, () => generation);
  return { ctx, suggestions, revealed, predictionAsks: () => predictionAsks, openAnother: () => generation++ };
}

const RESPONSE: SuggestResponse = {
  strategy: "entropy",
  version: 1,
  items: [{ row: 4, score: 0.9, group: [4, 5, 3], predicted: "a", confidence: 0.5 }],
};

test("suggestions are asked with the chosen strategy and count, shown, and the classifier is followed", async () => {
  const asked: string[] = [];
  const { ctx, suggestions, predictionAsks } = setup(async (_ref, strategy, n) => {
    asked.push(`${strategy} ${n}`);
    return RESPONSE;
  });
  suggestions.setStrategy("entropy");
  await suggestions.suggest();
  assert.deepEqual(asked, ["entropy 10"]);
  const s = ctx.store.get();
  assert.equal(s.suggestions, RESPONSE);
  assert.equal(s.suggestBusy, false);
  assert.equal(s.suggestMessage, "");
  await new Promise((r) => setTimeout(r, 350));
  assert.equal(predictionAsks(), 1, "no ready classifier yet: its predictions are followed");
});

test("nothing left to label, and what a strategy needs, are said as hints; other failures are errors with a retry", async () => {
  const empty = setup(async () => ({ ...RESPONSE, items: [] }));
  await empty.suggestions.suggest();
  assert.equal(empty.ctx.store.get().suggestMessage, "Nothing to suggest: every row is labeled.");

  const needs = setup(async () => {
    throw new ApiError("Label rows of two classes first.", 409, "active/suggest");
  });
  await needs.suggestions.suggest();
  assert.equal(needs.ctx.store.get().suggestMessage, "Label rows of two classes first.");
  assert.deepEqual(needs.ctx.host.errors, []);

  const broken = setup(async () => {
    throw new ApiError("boom", 500, "active/suggest");
  });
  await broken.suggestions.suggest();
  assert.equal(broken.ctx.store.get().suggestMessage, "Could not get suggestions: boom");
  assert.deepEqual(broken.ctx.host.errors, ["Could not get suggestions: boom"]);
  assert.equal(broken.ctx.host.retries.length, 1);
  assert.equal(broken.ctx.store.get().suggestBusy, false);
});

test("one request at a time; an answer for an embedding no longer open is dropped", async () => {
  const answer = deferred<SuggestResponse>();
  let calls = 0;
  const t = setup(() => {
    calls++;
    return answer.promise;
  });
  const pending = t.suggestions.suggest();
  assert.equal(t.ctx.store.get().suggestBusy, true);
  await t.suggestions.suggest();
  assert.equal(calls, 1, "a second click while busy does nothing");
  t.openAnother();
  answer.resolve(RESPONSE);
  await pending;
  await settle();
  assert.equal(t.ctx.store.get().suggestions, null);
});

test("accepting a suggestion selects its group around its row, keeps the user's k, and pans to it", () => {
  const t = setup(async () => RESPONSE);
  t.ctx.store.set({ spec: { ...t.ctx.store.get().spec, k: 7 } });
  t.suggestions.accept(RESPONSE.items[0]);
  const s = t.ctx.store.get();
  assert.equal(s.spec.focus, 4);
  assert.deepEqual([...s.members].sort(), [3, 4, 5]);
  assert.equal(s.spec.k, 7);
  assert.equal(s.acceptedSuggestion, 4);
  assert.deepEqual(t.revealed, [[4, false]]);
  t.suggestions.accept({ ...RESPONSE.items[0], row: 99 });
  assert.equal(t.ctx.store.get().acceptedSuggestion, 4, "a row outside the embedding is ignored");
});

test("the 'sure enough' threshold stays within 0..1", () => {
  const t = setup(async () => RESPONSE);
  t.suggestions.setSureThreshold(1.5);
  assert.equal(t.ctx.store.get().sureThreshold, 1);
  t.suggestions.setSureThreshold(-1);
  assert.equal(t.ctx.store.get().sureThreshold, 0);
  t.suggestions.setSureThreshold(NaN);
  assert.equal(t.ctx.store.get().sureThreshold, 0);
});
