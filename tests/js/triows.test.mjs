// Unit tests of triows/static/triows.js: `node --test tests/js/`.
//
// Every test injects a fake WebSocket class (the test plays the server: open, receive, close), a
// fake clock (timers run only when the test advances it) and a scripted random, so every delay is
// an exact number and nothing sleeps.

import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, test } from "node:test";

import {
  ConnectionClosedError,
  RequestError,
  TimeoutError,
  TriowsError,
  connect,
} from "../../triows/static/triows.js";

// The fake WebSocket: one class per test, recording its instances.
function fakeSocketClass() {
  class FakeSocket {
    static instances = [];
    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols;
      this.readyState = 0;
      this.sent = [];
      this.closedWith = null;
      this.binaryType = "blob";
      FakeSocket.instances.push(this);
    }
    send(data) {
      if (this.readyState !== 1) throw new Error(`send in readyState ${this.readyState}`);
      this.sent.push(data);
    }
    close(code, reason) {
      this.closedWith = [code, reason];
      this.readyState = 2;
    }
    // The server's side.
    accept(protocol = "") {
      this.protocol = protocol;
      this.readyState = 1;
      this.onopen?.({ type: "open" });
    }
    push(data) {
      this.onmessage?.({ data: typeof data === "string" || data instanceof ArrayBuffer ? data : JSON.stringify(data) });
    }
    fail() {
      // A browser's failed connection: error (already CLOSED), then close 1006.
      this.readyState = 3;
      this.onerror?.({ type: "error" });
      this.onclose?.({ code: 1006, reason: "", wasClean: false });
    }
    drop(code, reason = "") {
      this.readyState = 3;
      this.onclose?.({ code, reason, wasClean: code !== 1006 });
    }
  }
  return FakeSocket;
}

// The fake clock: setTimeout/clearTimeout callable unbound, run by advance(ms).
function fakeClock() {
  let now = 0;
  let seq = 0;
  const timers = new Map();
  return {
    setTimeout(fn, ms) {
      const id = ++seq;
      timers.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout(id) {
      timers.delete(id);
    },
    advance(ms) {
      const end = now + ms;
      for (;;) {
        let next = null;
        for (const [id, timer] of timers) {
          if (timer.at <= end && (next === null || timer.at < timers.get(next).at)) next = id;
        }
        if (next === null) break;
        const timer = timers.get(next);
        timers.delete(next);
        now = timer.at;
        timer.fn();
      }
      now = end;
    },
    get now() {
      return now;
    },
    // The delays still to run, from now.
    get pending() {
      return [...timers.values()].map((timer) => timer.at - now).sort((a, b) => a - b);
    },
  };
}

// random() returning the given values in turn; a call past the end fails the test.
function scripted(...values) {
  const random = () => {
    assert.ok(values.length > 0, "random() called more often than the test expected");
    return values.shift();
  };
  random.left = () => values.length;
  return random;
}

function setup(options = {}, url = "ws://example.test/ws") {
  const WebSocket = fakeSocketClass();
  const clock = fakeClock();
  const random = options.random ?? scripted();
  const conn = connect(url, {
    WebSocket,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    ...options,
    random,
  });
  const states = [];
  conn.onState((change) => states.push(change));
  const sockets = WebSocket.instances;
  return { conn, clock, random, states, sockets, last: () => sockets[sockets.length - 1] };
}

const microtask = () => new Promise((resolve) => queueMicrotask(resolve));
const summary = (states) => states.map((s) => [s.state, s.code, s.attempt, s.delay]);
const parsed = (socket) => socket.sent.map((text) => JSON.parse(text));

// Lose the connection with `code` (after opening it when `open`), then let the retry timer run.
function loseAndRetry(t, code, { open = false } = {}) {
  if (open) t.last().accept();
  t.last().drop(code);
  t.clock.advance(t.states.at(-1).delay ?? 0);
}

describe("connecting", () => {
  test("offers the page's subprotocols, then triows.v1 and triows.refused last, once", () => {
    const t = setup({ protocols: ["triows.v1", "chat", "triows.refused", "v2.chat"] });
    assert.deepEqual(t.last().protocols, ["chat", "v2.chat", "triows.v1", "triows.refused"]);
    const u = setup({});
    assert.deepEqual(u.last().protocols, ["triows.v1", "triows.refused"]);
    const v = setup({ protocols: "chat" });
    assert.deepEqual(v.last().protocols, ["chat", "triows.v1", "triows.refused"]);
  });

  test("a relative URL is resolved against location: http gives ws, https gives wss", (ctx) => {
    const saved = Object.getOwnPropertyDescriptor(globalThis, "location");
    ctx.after(() => {
      if (saved) Object.defineProperty(globalThis, "location", saved);
      else delete globalThis.location;
    });
    globalThis.location = { href: "http://chat.test:8000/chat/lobby?x=1" };
    assert.equal(setup({}, "/chat/lobby/ws").last().url, "ws://chat.test:8000/chat/lobby/ws");
    assert.equal(setup({}, "ws").last().url, "ws://chat.test:8000/chat/ws");
    globalThis.location = { href: "https://chat.test/room/" };
    assert.equal(setup({}, "ws?a=b").last().url, "wss://chat.test/room/ws?a=b");
    assert.equal(setup({}, "ws://other.test/x").last().url, "ws://other.test/x");
  });

  test("without location, a relative URL throws from connect()", () => {
    assert.equal(globalThis.location, undefined);
    assert.throws(() => setup({}, "/ws"), TypeError);
  });

  test("the WebSocket constructor's error at the first connect throws from connect()", () => {
    class Refusing {
      constructor() {
        throw new SyntaxError("The URL's scheme must be either 'ws' or 'wss'");
      }
    }
    const clock = fakeClock(); // should it not throw, its retries must not keep node running
    const options = { WebSocket: Refusing, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout };
    assert.throws(() => connect("ftp://example.test/ws", options), SyntaxError);
  });

  test("params: an object, or a function called at each connect", () => {
    const t = setup({ params: { name: "ann lee", n: 2, gone: null, tag: ["a", "b"] } }, "ws://h/ws?v=1");
    assert.equal(t.last().url, "ws://h/ws?v=1&name=ann+lee&n=2&tag=a&tag=b");
    let calls = 0;
    const u = setup({ params: () => ({ token: `t${++calls}` }), random: scripted(0) });
    assert.equal(u.last().url, "ws://example.test/ws?token=t1");
    loseAndRetry(u, 1006);
    assert.equal(calls, 2);
    assert.equal(u.last().url, "ws://example.test/ws?token=t2");
  });

  test("a params function that throws at a reconnect is reported, and counts as a failure", () => {
    let fail = false;
    const t = setup({ params: () => { if (fail) throw new Error("no token"); return {}; }, random: scripted(0, 0) });
    const errors = [];
    t.conn.onError((error, source) => errors.push([error.message, source]));
    fail = true;
    loseAndRetry(t, 1006, { open: true });
    assert.equal(t.sockets.length, 1);
    assert.deepEqual(errors, [["no token", "connect"]]);
    assert.deepEqual(summary(t.states).slice(-2), [
      ["reconnecting", 1006, 1, 500],
      ["reconnecting", 1006, 2, 1000],
    ]);
    assert.equal(t.states.at(-1).reason, "no token");
  });

  test("the first 'connecting' reaches listeners added right after connect()", async () => {
    const t = setup({});
    assert.equal(t.conn.state, "connecting");
    assert.deepEqual(t.states, []);
    await microtask();
    assert.deepEqual(summary(t.states), [["connecting", null, 0, null]]);
    t.last().accept();
    assert.equal(t.conn.state, "open");
    assert.deepEqual(t.states[1], {
      state: "open", code: null, reason: "", attempt: 0, delay: null, forGood: false,
    });
  });

  test("binary frames arrive as ArrayBuffers", () => {
    assert.equal(setup({}).last().binaryType, "arraybuffer");
  });
});

describe("reconnecting", () => {
  test("back-off: initialDelay * factor^n, capped at maxDelay, times (1 - jitter * random)", () => {
    const t = setup({
      reconnect: { initialDelay: 100, maxDelay: 1000, factor: 3, jitter: 0.5 },
      random: scripted(0, 0.5, 0.999, 0.2, 0, 0.5),
    });
    for (let i = 0; i < 6; i++) loseAndRetry(t, 1006);
    // bases 100, 300, 900, 1000 (capped), 1000, 1000
    assert.deepEqual(t.states.filter((s) => s.state === "reconnecting").map((s) => s.delay), [
      100, 225, 450, 900, 1000, 750,
    ]);
    assert.deepEqual(t.states.filter((s) => s.state === "reconnecting").map((s) => s.attempt), [
      1, 2, 3, 4, 5, 6,
    ]);
    assert.equal(t.sockets.length, 7);
  });

  test("the default back-off: 500 ms doubling to 30 s, jitter 0.5 (delays within [base/2, base])", () => {
    const delays = (value) => {
      const t = setup({ random: scripted(...Array(9).fill(value)) });
      for (let i = 0; i < 9; i++) loseAndRetry(t, 1006);
      return t.states.filter((s) => s.state === "reconnecting").map((s) => s.delay);
    };
    assert.deepEqual(delays(0), [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    assert.deepEqual(delays(0.999999), [250, 500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
  });

  test("error then close 1006 (a browser's failed connection): one loss", () => {
    const t = setup({ random: scripted(0) });
    t.last().fail();
    assert.deepEqual(summary(t.states), [["reconnecting", 1006, 1, 500]]);
  });

  test("an error alone while connecting (node 20's WebSocket) is taken as 1006", () => {
    const t = setup({ random: scripted(0, 0) });
    t.last().onerror({ type: "error" });
    assert.deepEqual(summary(t.states), [["reconnecting", 1006, 1, 500]]);
    t.sockets[0].drop(1006); // should it come after all: ignored
    assert.equal(t.states.length, 1);
    t.clock.advance(500);
    t.last().accept();
    t.last().onerror({ type: "error" }); // open: wait for the close
    assert.equal(t.conn.state, "open");
  });

  test("the timer is the delay: no socket before it, one at it", () => {
    const t = setup({ random: scripted(0.2) });
    t.last().drop(1006);
    assert.deepEqual(t.clock.pending, [450]);
    t.clock.advance(449);
    assert.equal(t.sockets.length, 1);
    t.clock.advance(1);
    assert.equal(t.sockets.length, 2);
    assert.equal(t.conn.state, "connecting");
    assert.deepEqual(summary(t.states), [
      ["reconnecting", 1006, 1, 450],
      ["connecting", null, 1, null],
    ]);
  });

  test("an open restarts the back-off and the attempt count", () => {
    const t = setup({ random: scripted(0, 0, 0, 0) });
    loseAndRetry(t, 1006);
    loseAndRetry(t, 1006);
    t.last().accept();
    assert.equal(t.states.at(-1).attempt, 2);
    loseAndRetry(t, 1011);
    loseAndRetry(t, 1006);
    assert.deepEqual(t.states.filter((s) => s.state === "reconnecting").map((s) => [s.attempt, s.delay]), [
      [1, 500], [2, 1000], [1, 500], [2, 1000],
    ]);
  });

  for (const code of [1012, 1001]) {
    test(`${code}: a prompt reconnect (random * initialDelay), without growing the back-off`, () => {
      const t = setup({ random: scripted(0, 0, 0.3, 0, 0) });
      loseAndRetry(t, 1006);
      loseAndRetry(t, 1006); // back-off step 2 next
      t.last().accept();
      loseAndRetry(t, code);
      loseAndRetry(t, 1006); // the server is not back yet: back-off from its start
      loseAndRetry(t, 1006);
      assert.deepEqual(t.states.filter((s) => s.state === "reconnecting").map((s) => [s.code, s.attempt, s.delay]), [
        [1006, 1, 500], [1006, 2, 1000], [code, 1, 150], [1006, 2, 500], [1006, 3, 1000],
      ]);
    });
  }

  const forGood = [1000, 1002, 1003, 1007, 1008, 1009, 1010, 4400, 4401, 4403, 4404, 4422, 4499];
  for (const code of forGood) {
    test(`${code} from the server: closed for good`, async () => {
      const t = setup({});
      t.last().accept();
      const opened = t.conn.opened();
      t.last().drop(code, "why");
      assert.equal(t.conn.state, "closed");
      assert.deepEqual(t.states.at(-1), {
        state: "closed", code, reason: "why", attempt: 0, delay: null, forGood: true,
      });
      assert.deepEqual(t.clock.pending, []);
      t.clock.advance(3600_000);
      assert.equal(t.sockets.length, 1);
      await opened; // it was open: resolved already
      const later = await t.conn.opened().catch((error) => error);
      assert.ok(later instanceof ConnectionClosedError);
      assert.deepEqual([later.code, later.reason], [code, "why"]);
    });
  }

  const retried = [1005, 1006, 1011, 1013, 1014, 1015, 3000, 4000, 4001, 4399, 4408, 4429, 4500, 4503, 4999];
  for (const code of retried) {
    test(`${code}: reconnects with back-off`, () => {
      const t = setup({ random: scripted(0.5) });
      t.last().accept();
      t.last().drop(code, "busy");
      assert.deepEqual(t.states.at(-1), {
        state: "reconnecting", code, reason: "busy", attempt: 1, delay: 375, forGood: false,
      });
      t.clock.advance(375);
      assert.equal(t.sockets.length, 2);
    });
  }

  test("a relayed refusal (4429, 4408, 4503) opens then closes: it does not restart the back-off", () => {
    const t = setup({ random: scripted(0, 0, 0, 0) });
    loseAndRetry(t, 4429, { open: true }); // even the first: it never really opened
    loseAndRetry(t, 4429, { open: true });
    loseAndRetry(t, 4408, { open: true });
    loseAndRetry(t, 4503, { open: true });
    assert.deepEqual(t.states.filter((s) => s.state === "reconnecting").map((s) => [s.attempt, s.delay]), [
      [1, 500], [2, 1000], [3, 2000], [4, 4000],
    ]);
  });

  test("a refusal accepted with triows.refused is never seen open", async () => {
    const t = setup({ heartbeat: true });
    const opened = t.conn.opened();
    await microtask(); // the first "connecting"
    t.last().accept("triows.refused");
    assert.equal(t.conn.state, "connecting");
    assert.equal(t.conn.send("say", { text: "x" }), false);
    assert.deepEqual(t.clock.pending, []); // no heartbeat started
    t.last().drop(4403, "Forbidden");
    assert.deepEqual(summary(t.states), [["connecting", null, 0, null], ["closed", 4403, 0, null]]);
    const error = await opened.catch((e) => e);
    assert.ok(error instanceof ConnectionClosedError);
    assert.equal(error.code, 4403);
  });

  test("a refusal accepted with triows.refused and retried (4429) grows the back-off", () => {
    const t = setup({ random: scripted(0, 0) });
    for (const delay of [500, 1000]) {
      t.last().accept("triows.refused");
      t.last().drop(4429, "slow down");
      assert.equal(t.states.at(-1).delay, delay);
      t.clock.advance(delay);
    }
    assert.equal(t.states.some((s) => s.state === "open"), false);
  });

  test("a relayed refusal for good (4403) after an open: closed, with its reason", () => {
    const t = setup({});
    t.last().accept();
    t.last().drop(4403, "Origin 'https://evil.example' is not allowed");
    assert.deepEqual(summary(t.states).at(-1), ["closed", 4403, 0, null]);
    assert.equal(t.states.at(-1).reason, "Origin 'https://evil.example' is not allowed");
  });

  test("maxAttempts: that many reconnects without an open, then closed for good", async () => {
    const t = setup({ reconnect: { maxAttempts: 2 }, random: scripted(0, 0) });
    const opened = t.conn.opened();
    loseAndRetry(t, 1006);
    loseAndRetry(t, 1006);
    t.last().drop(1006);
    assert.equal(t.sockets.length, 3);
    assert.deepEqual(summary(t.states).at(-1), ["closed", 1006, 2, null]);
    const error = await opened.catch((e) => e);
    assert.ok(error instanceof ConnectionClosedError);
    assert.equal(error.code, 1006);
    assert.equal(error.message, "closed for good: the connection closed (1006)");
  });

  test("maxAttempts counts from the last open", () => {
    const t = setup({ reconnect: { maxAttempts: 1 }, random: scripted(0, 0, 0) });
    loseAndRetry(t, 1006);
    loseAndRetry(t, 1006, { open: true });
    loseAndRetry(t, 1012, { open: true });
    assert.equal(t.conn.state, "connecting");
    t.last().drop(1006);
    assert.equal(t.conn.state, "closed");
    assert.equal(t.sockets.length, 4);
  });

  test("reconnect: false never reconnects, not even on 1012", () => {
    const t = setup({ reconnect: false });
    t.last().accept();
    t.last().drop(1012);
    assert.deepEqual(summary(t.states).at(-1), ["closed", 1012, 0, null]);
    assert.deepEqual(t.clock.pending, []);
  });

  test("opened() waits through reconnects, and resolves at the next open", async () => {
    const t = setup({ random: scripted(0) });
    let resolved = false;
    const opened = t.conn.opened().then(() => { resolved = true; });
    loseAndRetry(t, 1006);
    await microtask();
    assert.equal(resolved, false);
    t.last().accept();
    await opened;
    assert.equal(resolved, true);
    await t.conn.opened(); // open: at once
  });
});

describe("resume", () => {
  const message = (id, text, extra = {}) => ({ id, event: "message", text, ...extra });

  test("since= only once an id was seen, and then the last one, at each reconnect", () => {
    const t = setup({ params: { name: "ann" }, random: scripted(0, 0, 0) });
    t.last().accept();
    t.last().push({ event: "presence_state", members: ["ann"] });
    loseAndRetry(t, 1006);
    assert.equal(t.last().url, "ws://example.test/ws?name=ann");
    t.last().accept();
    t.last().push(message("k3j2:16", "a"));
    t.last().push(message("k3j2:17", "b"));
    loseAndRetry(t, 1006);
    assert.equal(t.last().url, "ws://example.test/ws?name=ann&since=k3j2%3A17");
    t.last().accept();
    t.last().push(message("k3j2:18", "c"));
    loseAndRetry(t, 1012);
    assert.equal(t.last().url, "ws://example.test/ws?name=ann&since=k3j2%3A18");
    assert.deepEqual(t.conn.lastIds, { "*": "k3j2:18" });
  });

  test("resume.since gives the first connect its since=, and drops what is not after it", () => {
    const t = setup({ resume: { param: "after", since: "e:5" } });
    assert.equal(t.last().url, "ws://example.test/ws?after=e%3A5");
    const seen = [];
    t.conn.on("message", (frame) => seen.push(frame.id));
    t.last().accept();
    for (const id of ["e:4", "e:5", "e:6"]) t.last().push(message(id, id));
    assert.deepEqual(seen, ["e:6"]);
  });

  test("resume.since overrides a since the page put in params", () => {
    const t = setup({ params: { since: "old:1" }, resume: { since: "e:5" } });
    assert.equal(t.last().url, "ws://example.test/ws?since=e%3A5");
  });

  test("a replay that overlaps is shown once, in order; a new epoch is accepted", () => {
    const t = setup({ random: scripted(0) });
    const seen = [];
    t.conn.on("message", (frame) => seen.push(frame.text));
    t.last().accept();
    t.last().push(message("k:1", "one"));
    t.last().push(message("k:2", "two"));
    loseAndRetry(t, 1006);
    t.last().accept();
    for (const [id, text] of [["k:1", "one"], ["k:2", "two"], ["k:3", "three"]]) t.last().push(message(id, text));
    t.last().push(message("k:3", "three again"));
    t.last().push(message("z9:0", "a new epoch"));
    t.last().push(message("z9:0", "its repeat"));
    t.last().push(message("z9:1", "after"));
    assert.deepEqual(seen, ["one", "two", "three", "a new epoch", "after"]);
    assert.deepEqual(t.conn.lastIds, { "*": "z9:1" });
  });

  test("offsets compare as integer tuples, not as text", () => {
    const t = setup({});
    const seen = [];
    t.conn.on("message", (frame) => seen.push(frame.id));
    t.last().accept();
    const ids = [
      "s:1733100000000-3", "s:1733100000000-10", "s:1733100000000-9", "s:1733100000001-0",
      "s:999999999999-99", "s:9007199254740993-0", "s:9007199254740992-5",
    ];
    for (const id of ids) t.last().push(message(id, "x"));
    assert.deepEqual(seen, ["s:1733100000000-3", "s:1733100000000-10", "s:1733100000001-0", "s:9007199254740993-0"]);
  });

  test("a one-part offset comes before its two-part extensions, as in Python", () => {
    const t = setup({});
    const seen = [];
    t.conn.on("message", (frame) => seen.push(frame.id));
    t.last().accept();
    for (const id of ["e:5", "e:5-0", "e:5", "e:5-0", "e:5-1", "e:6"]) t.last().push(message(id, "x"));
    assert.deepEqual(seen, ["e:5", "e:5-0", "e:5-1", "e:6"]);
  });

  test("only an id that is the frame's first key and well-formed is a message id", () => {
    const t = setup({});
    const seen = [];
    t.conn.on("profile", (frame) => seen.push(frame.id));
    t.last().accept();
    t.last().push('{"event":"profile","id":"user:5"}');
    t.last().push('{"event":"profile","id":"user:5"}');
    t.last().push('{"id":"user","event":"profile"}');
    t.last().push('{"id":"user:5:6","event":"profile"}');
    t.last().push('{"id":"user:-5","event":"profile"}');
    t.last().push('{"id":"user:1-2-3","event":"profile"}');
    t.last().push('{"id":":5","event":"profile"}');
    t.last().push('{"id":7,"event":"profile"}');
    assert.deepEqual(seen, ["user:5", "user:5", "user", "user:5:6", "user:-5", "user:1-2-3", ":5", 7]);
    assert.deepEqual(t.conn.lastIds, {});
  });

  test("topic(frame) keeps one last id per topic (null: not tracked), query() builds the params", () => {
    const queried = [];
    const t = setup({
      resume: {
        topic: (frame) => frame.room ?? null,
        query: (lastIds) => {
          queried.push(lastIds);
          return { after: Object.entries(lastIds).map(([room, id]) => `${room}@${id}`).join(",") };
        },
      },
      random: scripted(0),
    });
    const seen = [];
    t.conn.on("message", (frame) => seen.push(`${frame.room}/${frame.id}`));
    t.last().accept();
    t.last().push(message("e:1", "", { room: "a" }));
    t.last().push(message("e:1", "", { room: "b" }));
    t.last().push(message("e:1", "", { room: "a" }));
    t.last().push(message("e:1", "")); // no room: not tracked, always shown
    t.last().push(message("e:1", ""));
    loseAndRetry(t, 1006);
    assert.deepEqual(seen, ["a/e:1", "b/e:1", "undefined/e:1", "undefined/e:1"]);
    assert.equal(t.last().url, "ws://example.test/ws?after=a%40e%3A1%2Cb%40e%3A1");
    assert.deepEqual(queried, [{ a: "e:1", b: "e:1" }]); // not called before the first id
    assert.equal(Object.isFrozen(queried[0]), true);
  });

  test("with several topics and no query(), no resume parameter", () => {
    const t = setup({ resume: { topic: (frame) => frame.room }, random: scripted(0) });
    t.last().accept();
    t.last().push(message("e:1", "", { room: "a" }));
    t.last().push(message("e:1", "", { room: "b" }));
    loseAndRetry(t, 1006);
    assert.equal(t.last().url, "ws://example.test/ws");
  });

  test("resume: null tracks nothing and drops nothing", () => {
    const t = setup({ resume: null, random: scripted(0) });
    const seen = [];
    t.conn.on("message", (frame) => seen.push(frame.id));
    t.last().accept();
    t.last().push(message("k:2", ""));
    t.last().push(message("k:1", ""));
    loseAndRetry(t, 1006);
    assert.deepEqual(seen, ["k:2", "k:1"]);
    assert.equal(t.last().url, "ws://example.test/ws");
    assert.deepEqual(t.conn.lastIds, {});
  });

  test("lastIds is a read-only copy", () => {
    const t = setup({});
    t.last().accept();
    t.last().push(message("k:1", ""));
    const ids = t.conn.lastIds;
    assert.throws(() => { "use strict"; ids["*"] = "k:0"; }, TypeError);
    assert.deepEqual(t.conn.lastIds, { "*": "k:1" });
  });

  test("a gap event is dispatched like any other", () => {
    const t = setup({});
    const gaps = [];
    t.conn.on("gap", (frame) => gaps.push(frame));
    t.last().accept();
    t.last().push({ event: "gap", topic: "room:x", since: "k:1" });
    assert.deepEqual(gaps, [{ event: "gap", topic: "room:x", since: "k:1" }]);
  });
});

describe("sending", () => {
  test("send(): a flat object, the discriminator first; false (nothing queued) when not open", () => {
    const t = setup({ random: scripted(0) });
    assert.equal(t.conn.send("say", { text: "early" }), false);
    t.last().accept();
    assert.equal(t.conn.send("say", { text: "hi", event: "forged" }), true);
    assert.equal(t.conn.send("ping"), true);
    assert.deepEqual(t.last().sent, ['{"event":"say","text":"hi"}', '{"event":"ping"}']);
    t.last().drop(1006);
    assert.equal(t.conn.send("say", { text: "late" }), false);
    assert.equal(t.conn.sendRaw("late"), false);
  });

  test("the data of an event is an object: anything else is a TypeError, for send and request", async () => {
    const t = setup({});
    t.last().accept();
    assert.throws(() => t.conn.send("say", "hi"), {
      name: "TypeError", message: 'the data of "say" is an object (its fields), got "hi"',
    });
    assert.throws(() => t.conn.send("say", [1]), TypeError);
    await assert.rejects(t.conn.request("say", 5), TypeError);
    assert.equal(t.conn.send("say", null), true);
    assert.deepEqual(t.last().sent, ['{"event":"say"}']);
  });

  test("a route's own discriminator", () => {
    const t = setup({ discriminator: "type" });
    const seen = [];
    t.conn.on("say", (frame) => seen.push(frame));
    t.last().accept();
    t.conn.send("say", { text: "hi" });
    t.last().push({ type: "say", text: "back" });
    t.last().push({ event: "say", text: "not mine" });
    assert.deepEqual(t.last().sent, ['{"type":"say","text":"hi"}']);
    assert.deepEqual(seen, [{ type: "say", text: "back" }]);
  });

  test("send() on a socket that is closing (not yet told) returns false", () => {
    const t = setup({});
    t.last().accept();
    t.last().readyState = 2;
    assert.equal(t.conn.send("say", {}), false);
    assert.deepEqual(t.last().sent, []);
  });

  test("sendRaw() sends text or binary as it is", () => {
    const t = setup({});
    t.last().accept();
    const bytes = new Uint8Array([1, 2]);
    assert.equal(t.conn.sendRaw("hello"), true);
    assert.equal(t.conn.sendRaw(bytes), true);
    assert.deepEqual(t.last().sent, ["hello", bytes]);
  });
});

describe("requests", () => {
  test("resolves with the reply's data; each request its own ref", async () => {
    const t = setup({});
    t.last().accept();
    const first = t.conn.request("say", { text: "hi" });
    const second = t.conn.request("count");
    assert.deepEqual(parsed(t.last()), [{ event: "say", text: "hi", ref: 1 }, { event: "count", ref: 2 }]);
    const raw = [];
    t.conn.onRaw((data) => raw.push(data));
    t.last().push({ ref: 2, ok: true, data: 41 });
    t.last().push({ ref: 1, ok: true, data: null });
    assert.equal(await second, 41);
    assert.equal(await first, null);
    assert.deepEqual(raw, []);
    assert.deepEqual(t.clock.pending, []);
  });

  test("ok: false rejects with a RequestError carrying code and errors", async () => {
    const t = setup({});
    t.last().accept();
    const reply = t.conn.request("say", { text: "" });
    const errors = [{ type: "string_too_short", loc: ["text"], msg: "String should have at least 1 character", input: "", ctx: { min_length: 1 } }];
    t.last().push({ ref: 1, ok: false, code: 1008, errors });
    const error = await reply.catch((e) => e);
    assert.ok(error instanceof RequestError);
    assert.ok(error instanceof TriowsError);
    assert.equal(error.name, "RequestError");
    assert.equal(error.code, 1008);
    assert.deepEqual(error.errors, errors);
    assert.equal(error.message, 'request "say" was refused (code 1008): String should have at least 1 character');
  });

  test("no reply in time: a TimeoutError; the late reply is dropped", async () => {
    const t = setup({ requestTimeout: 2000 });
    t.last().accept();
    const slow = t.conn.request("say", {});
    const slower = t.conn.request("say", {}, { timeout: 5000 });
    const forever = t.conn.request("say", {}, { timeout: Infinity });
    assert.deepEqual(t.clock.pending, [2000, 5000]);
    t.clock.advance(1999);
    let settled = false;
    slow.catch(() => { settled = true; });
    await microtask();
    assert.equal(settled, false);
    t.clock.advance(1);
    const error = await slow.catch((e) => e);
    assert.ok(error instanceof TimeoutError);
    assert.deepEqual([error.name, error.timeout, error.message], ["TimeoutError", 2000, 'request "say" got no reply within 2000 ms']);
    const raw = [];
    t.conn.onRaw((data) => raw.push(data));
    t.last().push({ ref: 1, ok: true, data: "late" });
    assert.deepEqual(raw, []);
    t.clock.advance(3000);
    assert.equal((await slower.catch((e) => e)).timeout, 5000);
    t.last().push({ ref: 3, ok: true, data: "at last" });
    assert.equal(await forever, "at last");
  });

  test("the connection lost before the reply: rejected, and never re-sent", async () => {
    const t = setup({ random: scripted(0) });
    t.last().accept();
    const reply = t.conn.request("say", { text: "hi" });
    t.last().drop(1006);
    const error = await reply.catch((e) => e);
    assert.ok(error instanceof ConnectionClosedError);
    assert.deepEqual([error.code, error.reason], [1006, ""]);
    assert.equal(error.message, 'request "say" got no reply: the connection closed (1006)');
    assert.deepEqual(t.clock.pending, [500]); // only the reconnect: its timeout was cleared
    t.clock.advance(500);
    t.last().accept();
    assert.deepEqual(t.last().sent, []);
  });

  test("not open: rejected at once, nothing sent", async () => {
    const t = setup({});
    const error = await t.conn.request("say", {}).catch((e) => e);
    assert.ok(error instanceof ConnectionClosedError);
    assert.equal(error.code, null);
    assert.equal(error.message, 'request "say" not sent: the connection is connecting');
  });

  test("a server event with a ref field is an event, not a reply", async () => {
    const t = setup({});
    t.last().accept();
    const reply = t.conn.request("say", {});
    const seen = [];
    t.conn.on("commit", (frame) => seen.push(frame));
    t.last().push({ event: "commit", ref: 1, ok: true });
    assert.deepEqual(seen, [{ event: "commit", ref: 1, ok: true }]);
    t.last().push({ ref: 1, ok: true, data: "reply" });
    assert.equal(await reply, "reply");
  });
});

describe("receiving", () => {
  test("events go to their listeners; on() returns an unsubscribe; unknown events are ignored", () => {
    const t = setup({});
    const seen = [];
    const off = t.conn.on("message", (frame) => seen.push(["a", frame.text]));
    t.conn.on("message", (frame) => seen.push(["b", frame.text]));
    const raw = [];
    t.conn.onRaw((data) => raw.push(data));
    t.last().accept();
    t.last().push({ event: "message", text: "1" });
    off();
    off();
    t.last().push({ event: "message", text: "2" });
    t.last().push({ event: "nobody_listens" });
    assert.deepEqual(seen, [["a", "1"], ["b", "1"], ["b", "2"]]);
    assert.deepEqual(raw, []);
  });

  test("raw: text, JSON that is not an event object, bad JSON and binary", () => {
    const t = setup({});
    const raw = [];
    t.conn.onRaw((data) => raw.push(data));
    t.last().accept();
    const bytes = new ArrayBuffer(2);
    const frames = ["We have received your complaint", "[1,2]", '"text"', "42", '{"hello": "world"}', "{oops", '{"event": 3}', bytes];
    for (const frame of frames) t.last().push(frame);
    assert.deepEqual(raw, frames);
  });

  test("invalid: the error frame of a message without ref", () => {
    const t = setup({});
    const invalid = [];
    t.conn.onInvalid((frame) => invalid.push(frame));
    t.last().accept();
    const frame = { code: 1008, errors: [{ type: "missing", loc: ["text"], msg: "Field required", input: {} }] };
    t.last().push(frame);
    t.last().drop(1008, "");
    assert.deepEqual(invalid, [frame]);
    assert.equal(t.conn.state, "closed");
  });

  test("a listener that throws is reported to onError; the others and the connection go on", () => {
    const t = setup({});
    const errors = [];
    t.conn.onError((error, source) => errors.push([error.message, source]));
    const seen = [];
    t.conn.on("message", () => { throw new Error("boom"); });
    t.conn.on("message", (frame) => seen.push(frame.text));
    t.conn.onRaw(() => { throw new Error("raw boom"); });
    t.conn.onState(() => { throw new Error("state boom"); });
    t.last().accept();
    t.last().push({ event: "message", text: "still here" });
    t.last().push("plain");
    assert.deepEqual(seen, ["still here"]);
    assert.deepEqual(errors, [["state boom", "state"], ["boom", "message"], ["raw boom", "raw"]]);
    assert.equal(t.conn.state, "open");
    assert.equal(t.conn.send("say", {}), true);
  });

  test("without onError, a throwing listener goes to console.error", (ctx) => {
    const logged = [];
    ctx.mock.method(console, "error", (...args) => logged.push(args));
    const t = setup({});
    const boom = new Error("boom");
    t.conn.on("message", () => { throw boom; });
    t.last().accept();
    t.last().push({ event: "message" });
    assert.deepEqual(logged, [['triows: a "message" listener threw', boom]]);
    assert.equal(t.conn.state, "open");
  });

  test("on() wants a function", () => {
    const t = setup({});
    assert.throws(() => t.conn.on("message", "nope"), TypeError);
  });
});

describe("heartbeat", () => {
  const heartbeat = { ping: "ping", pong: "pong", interval: 1000, timeout: 300 };

  test("a ping every interval while open; the pong is never dispatched", () => {
    const t = setup({ heartbeat });
    const raw = [];
    t.conn.onRaw((data) => raw.push(data));
    t.clock.advance(5000);
    assert.deepEqual(t.last().sent, []); // not open yet
    t.last().accept();
    t.clock.advance(999);
    assert.deepEqual(t.last().sent, []);
    t.clock.advance(1);
    assert.deepEqual(t.last().sent, ["ping"]);
    t.clock.advance(200);
    t.last().push("pong");
    t.clock.advance(800);
    assert.deepEqual(t.last().sent, ["ping", "ping"]);
    t.last().push("pong");
    t.clock.advance(1000);
    assert.deepEqual(t.last().sent, ["ping", "ping", "ping"]);
    assert.deepEqual(raw, []);
    assert.equal(t.conn.state, "open");
  });

  test("no frame within timeout of a ping: closed with 4000, then a back-off reconnect", () => {
    const t = setup({ heartbeat, random: scripted(0) });
    t.last().accept();
    t.clock.advance(1000);
    t.clock.advance(299);
    assert.equal(t.last().closedWith, null);
    t.clock.advance(1);
    assert.deepEqual(t.sockets[0].closedWith, [4000, "heartbeat timeout"]);
    assert.deepEqual(t.states.at(-1), {
      state: "reconnecting", code: 4000, reason: "heartbeat timeout", attempt: 1, delay: 500, forGood: false,
    });
    t.sockets[0].drop(4000, "heartbeat timeout"); // the browser's close event, later: ignored
    assert.equal(t.states.length, 2);
    t.clock.advance(500);
    assert.equal(t.sockets.length, 2);
  });

  test("any frame counts as alive, not only the pong", () => {
    const t = setup({ heartbeat });
    t.last().accept();
    t.clock.advance(1000);
    t.last().push({ event: "message", text: "busy" });
    t.clock.advance(999);
    assert.equal(t.conn.state, "open");
    assert.deepEqual(t.last().sent, ["ping"]);
  });

  test("no heartbeat by default: no timer while open, and 'pong' is a raw frame", () => {
    const t = setup({});
    const raw = [];
    t.conn.onRaw((data) => raw.push(data));
    t.last().accept();
    assert.deepEqual(t.clock.pending, []);
    t.last().push("pong");
    assert.deepEqual(raw, ["pong"]);
  });

  test("its timers stop with the connection", () => {
    const t = setup({ heartbeat, random: scripted(0) });
    t.last().accept();
    t.clock.advance(1000);
    t.last().drop(1006);
    assert.deepEqual(t.clock.pending, [500]);
  });
});

describe("close()", () => {
  test("closed for good: the socket closed with the page's code, requests rejected, no reconnect", async () => {
    const t = setup({});
    t.last().accept();
    const reply = t.conn.request("say", {});
    const opened = t.conn.opened();
    t.conn.close(4001, "bye");
    assert.deepEqual(t.last().closedWith, [4001, "bye"]);
    assert.deepEqual(t.states.at(-1), {
      state: "closed", code: 4001, reason: "bye", attempt: 0, delay: null, forGood: true,
    });
    const error = await reply.catch((e) => e);
    assert.ok(error instanceof ConnectionClosedError);
    assert.equal(error.code, 4001);
    await opened;
    t.last().drop(4001, "bye"); // the browser's close event: ignored
    t.clock.advance(3600_000);
    assert.equal(t.sockets.length, 1);
    assert.equal(t.states.length, 2);
    t.conn.close(); // again: nothing
    assert.equal(t.states.length, 2);
    assert.equal(t.conn.send("say", {}), false);
  });

  test("defaults to 1000; while reconnecting it cancels the retry", async () => {
    const t = setup({ random: scripted(0) });
    t.last().drop(1006);
    const opened = t.conn.opened();
    t.conn.close();
    assert.deepEqual(summary(t.states).at(-1), ["closed", 1000, 1, null]);
    assert.deepEqual(t.clock.pending, []);
    assert.equal((await opened.catch((e) => e)).code, 1000);
  });

  test("a code the browser refuses throws, and nothing changes", () => {
    const t = setup({});
    t.last().accept();
    assert.throws(() => t.conn.close(1001), RangeError);
    assert.throws(() => t.conn.close(5000), RangeError);
    assert.equal(t.conn.state, "open");
  });

  test("close() right after connect(): the first 'connecting' is not told after 'closed'", async () => {
    const t = setup({});
    t.conn.close();
    await microtask();
    assert.deepEqual(summary(t.states), [["closed", 1000, 0, null]]);
  });

  test("a state listener that closes stops the round of the older state", () => {
    const t = setup({ random: scripted(0) });
    t.last().accept();
    const later = [];
    t.conn.onState((change) => { if (change.state === "reconnecting") t.conn.close(); });
    t.conn.onState((change) => later.push(change.state));
    t.last().drop(1006);
    assert.deepEqual(later, ["closed"]);
    assert.deepEqual(t.clock.pending, []);
  });
});
