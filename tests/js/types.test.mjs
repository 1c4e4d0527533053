// triows.d.ts in step with triows.js: the same exports and connection members, and a page's use of
// the API (usage.ts) type-checked with tsc --strict (skipped when npx cannot fetch TypeScript).

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import * as triows from "../../triows/static/triows.js";

const here = dirname(fileURLToPath(import.meta.url));
const declarations = readFileSync(join(here, "../../triows/static/triows.d.ts"), "utf8");

test("the declarations export what the module exports", () => {
  const declared = [...declarations.matchAll(/^export (?:class|function) (\w+)/gm)].map((m) => m[1]);
  assert.deepEqual(declared.sort(), Object.keys(triows).sort());
});

test("the Connection interface declares each member of a connection, and no other", () => {
  const body = declarations.match(/^export interface Connection<[\s\S]*?^}/m)[0];
  const declared = [...body.matchAll(/^ {2}(?:readonly )?(\w+)[<(:]/gm)].map((m) => m[1]);
  class Idle {
    constructor() {
      this.readyState = 0;
    }
    close() {}
  }
  const conn = triows.connect("ws://example.test/ws", { WebSocket: Idle });
  conn.close();
  assert.deepEqual(declared.sort(), Object.keys(conn).sort());
});

test("usage.ts type-checks against the declarations (tsc --strict)", (ctx) => {
  const run = (args) =>
    spawnSync("npx", ["--yes", "-p", "typescript@5", ...args], { encoding: "utf8", timeout: 180_000 });
  const probe = run(["tsc", "--version"]);
  if (probe.status !== 0) {
    ctx.skip(`npx could not fetch typescript@5 from the npm registry: ${(probe.stderr || probe.error || "").toString().trim().split("\n")[0]}`);
    return;
  }
  const check = spawnSync("sh", [join(here, "check-types.sh")], { encoding: "utf8", timeout: 180_000 });
  assert.equal(check.status, 0, `tsc found errors:\n${check.stdout}${check.stderr}`);
});
