// The rounds: listing, stepping, model view and back, playing; against a fake api object.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { EmbeddingRef, RoundInfo, RoundsInfo } from "../src/api";
import { normalizePositions } from "../src/camera";
import { RoundsController, type RoundsApi, roundRows } from "../src/roundsController";
import { accuracyText, roundText } from "../src/roundsPanel";
import { loaded } from "./fakes";

const ROWS = 6;

function round(k: number, changed: [number, string | null][], accuracy: number | null = null): RoundInfo {
  return {
    round: k, id: `r-${k}`, version: k + 1, time: "", rows: ROWS, n_labeled: 2 * k, classes: ["a", "b"], changed,
    accuracy, accuracy_std: accuracy === null ? null : 0.05, accuracy_folds: accuracy === null ? 0 : 3, n_components: 3, train_seconds: 0.1, accuracy_on: "labeled rows", suggested: [],
  };
}

/** Round k's model view: row i at (i * k, -i, k). */
function positionsOf(k: number): Float32Array {
  const p = new Float32Array(ROWS * 3);
  for (let i = 0; i < ROWS; i++) p.set([i * k, -i, k], 3 * i);
  return p;
}

function fakeRoundsApi(infos: RoundsInfo[]) {
  const calls: string[] = [];
  let next = 0;
  const api: RoundsApi = {
    rounds: async (_r: EmbeddingRef) => {
      calls.push("rounds");
      return infos[Math.min(next++, infos.length - 1)];
    },
    roundPositions: async (_r: EmbeddingRef, k: number) => {
      calls.push(`positions ${k}`);
      return { normalized: normalizePositions(positionsOf(k), ROWS, 3), rows: ROWS, dims: 3 };
    },
  };
  return { api, calls };
}

const TWO: RoundsInfo = { rounds: [round(1, [[0, "a"], [1, "b"]], 0.9), round(2, [[2, "a"], [3, null]])], estimating: false, problems: [] };

test("nothing is asked before the panel opens; opening lists the rounds", async () => {
  const ctx = loaded(ROWS);
  const { api, calls } = fakeRoundsApi([TWO]);
  let restored = 0;
  const rounds = new RoundsController(api, ctx, () => restored++);
  await rounds.refresh();
  assert.deepEqual(calls, []);
  rounds.setOpen(true);
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(calls, ["rounds"]);
  assert.equal(ctx.store.get().rounds?.rounds.length, 2);
  assert.equal(ctx.store.get().round, 0);
  assert.equal(restored, 0);
});

test("stepping rings the rows each round changed; model view moves the map and comes back", async () => {
  const ctx = loaded(ROWS);
  const { api, calls } = fakeRoundsApi([TWO]);
  let restored = 0;
  const rounds = new RoundsController(api, ctx, () => restored++);
  rounds.setOpen(true);
  await new Promise((r) => setTimeout(r, 0));
  await rounds.step(1);
  assert.equal(ctx.store.get().round, 1);
  assert.deepEqual(Array.from(roundRows(ctx.store.get())), [0, 1]);
  await rounds.step(1);
  assert.deepEqual(Array.from(roundRows(ctx.store.get())), [2, 3]);
  // Rows suggested before a round are ringed with those it labeled.
  assert.deepEqual(Array.from(roundRows({ ...ctx.store.get(), rounds: { ...TWO, rounds: [TWO.rounds[0], { ...TWO.rounds[1], suggested: [5, 3] }] } })), [2, 3, 5]);
  await rounds.step(1); // past the newest: stays there
  assert.equal(ctx.store.get().round, 2);
  assert.ok(!calls.some((c) => c.startsWith("positions")), "no model view asked for yet");

  const before = ctx.store.get().positionsRevision;
  await rounds.setModelView(true);
  const s = ctx.store.get();
  assert.equal(s.positionsSource, "model");
  assert.ok(s.positionsRevision > before);
  assert.deepEqual(calls.filter((c) => c.startsWith("positions")), ["positions 2"]);
  // 2D view: the third coordinate is dropped; rows keep their order along x.
  assert.equal(s.positions![2], 0);
  assert.ok(s.positions![3] > s.positions![0]);
  const r2 = s.positions!.slice();
  await rounds.step(-1);
  assert.notDeepEqual(Array.from(ctx.store.get().positions!), Array.from(r2), "round 1 sits elsewhere");
  await rounds.step(1);
  assert.deepEqual(calls.filter((c) => c.startsWith("positions")), ["positions 2", "positions 1"], "cached");
  await rounds.setModelView(false);
  assert.equal(restored, 1);
  assert.equal(ctx.store.get().modelView, false);
});

test("closing the panel stops playing, leaves model view and clears the rings", async () => {
  const ctx = loaded(ROWS);
  const { api } = fakeRoundsApi([TWO]);
  let restored = 0;
  const rounds = new RoundsController(api, ctx, () => restored++);
  rounds.setOpen(true);
  await new Promise((r) => setTimeout(r, 0));
  await rounds.setModelView(true);
  const playing = rounds.play();
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(ctx.store.get().roundsPlaying, true);
  assert.equal(ctx.store.get().round, 1, "plays from the first round when at the last");
  rounds.setOpen(false);
  await playing;
  const s = ctx.store.get();
  assert.equal(s.roundsPlaying, false);
  assert.equal(s.modelView, false);
  assert.equal(s.round, 0);
  assert.equal(restored, 1);
  assert.equal(roundRows(s).length, 0);
});

test("a new round while the newest is shown is followed; estimates are asked for again until done", async () => {
  const ctx = loaded(ROWS);
  const three: RoundsInfo = { rounds: [...TWO.rounds, round(3, [[4, "b"]])], estimating: true, problems: [] };
  const done: RoundsInfo = { rounds: three.rounds.map((r) => ({ ...r, accuracy: 0.8, accuracy_folds: 3 })), estimating: false, problems: [] };
  const { api, calls } = fakeRoundsApi([TWO, three, done]);
  const rounds = new RoundsController(api, ctx, () => undefined);
  rounds.setOpen(true);
  await new Promise((r) => setTimeout(r, 0));
  await rounds.show(2);
  await rounds.refresh();
  assert.equal(ctx.store.get().round, 3, "followed the new round");
  await new Promise((r) => setTimeout(r, 1700)); // ESTIMATE_POLL_MS
  assert.equal(calls.filter((c) => c === "rounds").length, 3);
  assert.equal(ctx.store.get().rounds?.estimating, false);
  assert.equal(ctx.store.get().rounds?.rounds[2].accuracy, 0.8);
});

test("answers for an embedding no longer open are dropped", async () => {
  const ctx = loaded(ROWS);
  const { api } = fakeRoundsApi([TWO]);
  const rounds = new RoundsController(api, ctx, () => undefined);
  rounds.setOpen(true);
  rounds.reset(); // another embedding opens before the answer
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(ctx.store.get().rounds, null);
});

test("the round's line says labels, classes, accuracy and what changed", () => {
  assert.equal(accuracyText(round(1, [], 0.834)), "83% ± 5 (3-fold)");
  assert.equal(accuracyText(round(1, [])), "estimating…");
  assert.equal(accuracyText({ ...round(1, []), accuracy_folds: -1 }), "too few labels per class to estimate");
  assert.equal(accuracyText({ ...round(1, [], 0.612), accuracy_folds: 0, accuracy_on: "held-out set" }), "61% on the held-out set");
  assert.equal(roundText(round(2, [[2, "a"], [3, null]], 0.5), 4),
    "Round 2 of 4 · 4 labels, 2 classes · accuracy 50% ± 5 (3-fold) · 1 row labeled, 1 cleared in this round");
});
