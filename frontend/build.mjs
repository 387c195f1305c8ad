// Build script: one ES module for the TensorBoard iframe, or the unit tests for node --test.
import * as esbuild from "esbuild";
import { readdirSync, rmSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const tests = process.argv.includes("--tests");

if (tests) {
  const out = join(here, ".test-build");
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out);
  const entries = readdirSync(join(here, "test"))
    .filter((f) => f.endsWith(".test.ts"))
    .map((f) => join(here, "test", f));
  await esbuild.build({
    entryPoints: entries,
    outdir: out,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "warning",
  });
} else {
  const started = Date.now();
  await esbuild.build({
    entryPoints: [join(here, "src", "index.ts")],
    outfile: join(here, "..", "tensorboard_al_plugin", "static", "index.js"),
    bundle: true,
    format: "esm",
    // TensorBoard's iframe allows only same-origin scripts: everything is bundled.
    platform: "browser",
    target: ["chrome100", "firefox100", "safari15"],
    minify: true,
    legalComments: "none",
    logLevel: "warning",
  });
  console.log(`built tensorboard_al_plugin/static/index.js in ${Date.now() - started} ms`);
}
