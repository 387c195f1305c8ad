// Build script: one ES module for the TensorBoard iframe, or the unit tests for node --test.
import * as esbuild from "esbuild";
import { existsSync, readdirSync, readFileSync, rmSync, mkdirSync } from "node:fs";
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
  const check = process.argv.includes("--check");
  const outfile = join(here, "..", "tensorboard_al_plugin", "static", "index.js");
  const result = await esbuild.build({
    entryPoints: [join(here, "src", "index.ts")],
    outfile,
    // --check: build in memory and compare with the committed bundle (is it up to date?).
    write: !check,
    bundle: true,
    format: "esm",
    // TensorBoard's iframe allows only same-origin scripts: everything is bundled.
    platform: "browser",
    target: ["chrome100", "firefox100", "safari15"],
    minify: true,
    legalComments: "none",
    logLevel: "warning",
  });
  if (check) {
    const fresh = result.outputFiles[0].contents;
    const committed = existsSync(outfile) ? readFileSync(outfile) : Buffer.alloc(0);
    if (Buffer.compare(Buffer.from(fresh), committed) !== 0) {
      console.error("tensorboard_al_plugin/static/index.js is out of date: run `npm --prefix frontend run build`");
      process.exit(1);
    }
    console.log("tensorboard_al_plugin/static/index.js is up to date");
  } else {
    console.log(`built tensorboard_al_plugin/static/index.js in ${Date.now() - started} ms`);
  }
}
