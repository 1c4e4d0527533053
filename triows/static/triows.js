// triows.js: the browser client of triows. An ES module with no dependencies and no build step;
// its TypeScript declarations are triows.d.ts beside it.
//
//     import { connect } from "/triows.js";
//     const conn = connect("/chat/lobby/ws", { params: { name: "ann" } });
//     conn.on("message", (frame) => show(frame));
//     conn.send("say", { text: "hi" });
//
// What it speaks (the server's side is triows' events, channels and refusal relay):
//
// * Frames are JSON text. An event is one flat object whose discriminator field ("event" unless
//   the route chose another) names it: {"event": "say", "text": "hi"}, both ways.
// * A request adds a correlation id, {"event": "say", "text": "hi", "ref": 7}, and gets exactly
//   one reply: {"ref": 7, "ok": true, "data": ...} or, when it failed validation, {"ref": 7,
//   "ok": false, "code": 1008, "errors": [...]}. A message without ref that fails validation gets
//   {"code": 1008, "errors": [...]}. A reply carries no discriminator: that is how it is told
//   from a server event that happens to have a "ref" field.
// * Anything else (plain text, binary, JSON that is not such an object) is a raw frame.
// * Messages of a topic with history start with "id": "EPOCH:OFFSET" (OFFSET is one integer or
//   two joined by "-", ordered as integer tuples within an epoch; a new epoch is not comparable
//   and is accepted). A reconnect asks for what was missed with since=LAST_ID; the replay may
//   overlap what the page has, so a message whose id is not after the last one of its topic (same
//   epoch) is dropped: the page sees each message once, in order. If the history cannot fill the
//   gap, the server sends {"event": "gap", ...}, dispatched like any event.
// * The client always offers the subprotocols "triows.v1" and "triows.refused", last: triows
//   then tells a refused handshake (which a browser only sees as 1006) by accepting it with
//   "triows.refused" and closing at once with 4000 + the HTTP status (4401, 4403, 4404,
//   4422...) and the refusal's detail as reason. Such a connection never counts as open: the
//   page sees "connecting", then the close. (A server that relays with "triows.v1" only is
//   seen to open first; a 44xx/45xx close after it still does not restart the back-off.)
//
// Close codes, and what follows:
//
//   closed for good  1000 (from the server), 1002, 1003, 1007, 1008, 1009, 1010, 4400-4499 except
//                    4408 and 4429, and close() by the page
//   prompt retry     1001 (going away, the server's idle timeout), 1012 (the server restarts):
//                    after a random 0..initialDelay, without growing the back-off
//   back-off retry   everything else (1005, 1006, 1011, 1013, 1014, 4408, 4429, 4500+, and
//                    4000, our own heartbeat timeout): initialDelay * factor^n, at most
//                    maxDelay, times (1 - jitter * random())
//
// The back-off and the attempt count restart once a connection has opened (unless it was a
// relayed refusal); after maxAttempts reconnects in a row that never opened, it is closed for good.
//
// No hidden queue: send() while not open returns false. Messages held back for a later
// connection would reach a server that has moved on (another worker, rooms joined anew, state
// the user no longer sees) in an order nobody chose; the page knows what is worth sending again
// (chat.js shows "not sent"). For the same reason a request is never re-sent after a reconnect:
// it is rejected when its connection closes, and the page decides.

const RELAY = "triows.v1"; // the subprotocol by which triows relays a refused handshake
const REFUSED = "triows.refused"; // the one it accepts a refused handshake with, to close it
const OPEN = 1; // WebSocket.OPEN
const HEARTBEAT_TIMEOUT = 4000;
const ID = /^([^:]+):(\d+)(?:-(\d+))?$/;
const RECONNECT = { initialDelay: 500, maxDelay: 30000, factor: 2, jitter: 0.5, maxAttempts: Infinity };
const HEARTBEAT = { ping: "ping", pong: "pong", interval: 25000, timeout: 10000 };
const DEFAULT_TOPIC = "*";

/** The base class of the errors this module rejects with. */
export class TriowsError extends Error {
  constructor(message) {
    super(message);
    this.name = "TriowsError";
  }
}

/** The server answered a request with ok: false (the message failed validation). */
export class RequestError extends TriowsError {
  constructor(event, reply) {
    const errors = Array.isArray(reply.errors) ? reply.errors : [];
    const why = errors.length && errors[0].msg ? `: ${errors[0].msg}` : "";
    super(`request "${event}" was refused (code ${reply.code})${why}`);
    this.name = "RequestError";
    this.code = reply.code;
    this.errors = errors;
  }
}

/** No reply came within the request's timeout. */
export class TimeoutError extends TriowsError {
  constructor(event, timeout) {
    super(`request "${event}" got no reply within ${timeout} ms`);
    this.name = "TimeoutError";
    this.timeout = timeout;
  }
}

/** The connection was not open, or closed before the reply (or for good, for opened()). */
export class ConnectionClosedError extends TriowsError {
  constructor(message, code = null, reason = "") {
    super(message);
    this.name = "ConnectionClosedError";
    this.code = code;
    this.reason = reason;
  }
}

const forGood = (code) =>
  code === 1000 || code === 1002 || code === 1003 || (code >= 1007 && code <= 1010) ||
  (code >= 4400 && code <= 4499 && code !== 4408 && code !== 4429);
const prompt = (code) => code === 1001 || code === 1012;
const relayed = (code) => code >= 4400 && code <= 4599; // 4000 + an HTTP 4xx or 5xx status

// An id as [epoch, offset as BigInts], or null when it is not one.
function parseId(id) {
  const match = typeof id === "string" && ID.exec(id);
  return match ? [match[1], match.slice(2).filter((part) => part !== undefined).map(BigInt)] : null;
}

// Whether offset a comes after offset b (integer tuples, compared as Python compares them).
function after(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] > b[i];
  }
  return a.length > b.length;
}

function describe(code, reason) {
  return `the connection closed (${code}${reason ? ` ${reason}` : ""})`;
}

/**
 * Open a connection that reconnects by itself; see triows.d.ts for every option.
 * Throws at once if the URL is invalid (the WebSocket constructor's own error).
 */
export function connect(url, options = {}) {
  const o = options;
  const key = o.discriminator ?? "event";
  const Socket = o.WebSocket ?? globalThis.WebSocket;
  const later = o.setTimeout ?? globalThis.setTimeout; // called unbound: fine for the window's
  const cancel = o.clearTimeout ?? globalThis.clearTimeout;
  const random = o.random ?? Math.random;
  const requestTimeout = o.requestTimeout ?? 10000;
  const retry = { ...RECONNECT, ...(o.reconnect === false ? { maxAttempts: 0 } : o.reconnect) };
  const beat = o.heartbeat ? { ...HEARTBEAT, ...o.heartbeat } : null;
  const resume = o.resume === undefined || o.resume ? { param: "since", ...o.resume } : null;
  const topicOf = resume?.topic ?? (() => DEFAULT_TOPIC);
  const mine = [RELAY, REFUSED];
  const protocols = [...[].concat(o.protocols ?? []).filter((p) => !mine.includes(p)), ...mine];
  const base = new URL(url, globalThis.location?.href);
  if (base.protocol === "http:") base.protocol = "ws:";
  else if (base.protocol === "https:") base.protocol = "wss:";

  let state = "connecting";
  let socket = null;
  let wasOpen = false; // the current socket opened
  let attempt = 0; // reconnects since the last open
  let step = 0; // back-off steps since the last open
  let retryTimer = null;
  let pingTimer = null;
  let deadTimer = null;
  let ref = 0;
  let final = null; // the error opened() rejects with, once closed for good
  let waiters = [];
  let changes = 0; // state changes so far: a listener that changes it stops the older one's round
  const pending = new Map(); // ref -> {event, resolve, reject, timer}
  const lastIds = {}; // topic -> id
  const events = new Map(); // event name -> Set of listeners
  const hooks = { state: new Set(), raw: new Set(), invalid: new Set(), error: new Set() };

  const since = resume?.since;
  if (typeof since === "string") lastIds[DEFAULT_TOPIC] = since;
  else if (since) Object.assign(lastIds, since);

  function report(error, source) {
    if (!hooks.error.size) return console.error(`triows: a "${source}" listener threw`, error);
    for (const fn of [...hooks.error]) {
      try {
        fn(error, source);
      } catch (failure) {
        console.error("triows: an error listener threw", failure);
      }
    }
  }

  // Each listener in turn, isolated; stops once current() is false (a newer state was entered).
  function call(listeners, value, source, current = () => true) {
    for (const fn of listeners ? [...listeners] : []) {
      if (!current()) return;
      try {
        fn(value);
      } catch (error) {
        report(error, source);
      }
    }
  }

  function listen(listeners, fn) {
    if (typeof fn !== "function") throw new TypeError(`a listener is a function, got ${typeof fn}`);
    listeners.add(fn);
    return () => {
      listeners.delete(fn);
    };
  }

  function enter(next, code = null, reason = "", delay = null) {
    state = next;
    const mine = ++changes;
    const settled = state === "open" || state === "closed" ? waiters : [];
    if (settled.length) waiters = [];
    for (const waiter of settled) state === "open" ? waiter.resolve() : waiter.reject(final);
    const change = { state, code, reason, attempt, delay, forGood: state === "closed" };
    call(hooks.state, change, "state", () => changes === mine);
  }

  function href() {
    const target = new URL(base);
    const add = (extra) => {
      for (const [name, value] of Object.entries(extra ?? {})) {
        target.searchParams.delete(name);
        for (const item of [].concat(value)) {
          if (item !== null && item !== undefined) target.searchParams.append(name, String(item));
        }
      }
    };
    add(typeof o.params === "function" ? o.params() : o.params);
    const ids = Object.freeze({ ...lastIds });
    if (resume && Object.keys(ids).length) {
      const values = Object.values(ids);
      add(resume.query ? resume.query(ids) : values.length === 1 ? { [resume.param]: values[0] } : {});
    }
    return target.href;
  }

  function start(first) {
    retryTimer = null;
    let next;
    try {
      next = new Socket(href(), protocols);
    } catch (error) {
      if (first) throw error;
      report(error, "connect");
      return lost(1006, String(error?.message ?? error));
    }
    next.binaryType = "arraybuffer";
    next.onopen = opened;
    next.onmessage = (event) => receive(event.data);
    next.onclose = (event) => {
      detach();
      lost(event.code, event.reason);
    };
    // A browser fires error (readyState already CLOSED), then close 1006. Node 20's WebSocket
    // fires only error, still CONNECTING, on a refused connection: take that as the 1006.
    next.onerror = () => {
      if (next.readyState === 0 && socket === next) next.onclose({ code: 1006, reason: "" });
    };
    socket = next;
    if (!first) enter("connecting");
  }

  function opened() {
    if (socket?.protocol === REFUSED) return; // a refusal: its close follows at once
    wasOpen = true;
    if (beat) pingTimer = later(ping, beat.interval);
    enter("open");
  }

  function detach() {
    if (socket) socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    socket = null;
    cancel(pingTimer);
    cancel(deadTimer);
    pingTimer = deadTimer = null;
  }

  function ping() {
    pingTimer = later(ping, beat.interval);
    transmit(beat.ping);
    deadTimer ??= later(dead, beat.timeout);
  }

  function dead() {
    const stale = socket;
    detach();
    stale.close(HEARTBEAT_TIMEOUT, "heartbeat timeout");
    lost(HEARTBEAT_TIMEOUT, "heartbeat timeout");
  }

  function rejectPending(code, reason) {
    for (const request of pending.values()) {
      cancel(request.timer);
      const why = `request "${request.event}" got no reply: ${describe(code, reason)}`;
      request.reject(new ConnectionClosedError(why, code, reason));
    }
    pending.clear();
  }

  function lost(code, reason) {
    rejectPending(code, reason);
    if (wasOpen && !relayed(code)) attempt = step = 0;
    wasOpen = false;
    if (forGood(code) || attempt >= retry.maxAttempts) return finish(code, reason);
    attempt++;
    const delay = Math.round(
      prompt(code)
        ? random() * retry.initialDelay
        : Math.min(retry.maxDelay, retry.initialDelay * retry.factor ** step++) *
            (1 - retry.jitter * random()),
    );
    retryTimer = later(() => start(false), delay);
    enter("reconnecting", code, reason, delay);
  }

  function finish(code, reason) {
    cancel(retryTimer);
    retryTimer = null;
    final = new ConnectionClosedError(`closed for good: ${describe(code, reason)}`, code, reason);
    enter("closed", code, reason);
  }

  function receive(data) {
    cancel(deadTimer);
    deadTimer = null;
    if (beat && data === beat.pong) return;
    let frame = null;
    if (typeof data === "string" && /^\s*\{/.test(data)) {
      try {
        frame = JSON.parse(data);
      } catch {
        // not JSON: a raw frame
      }
    }
    if (frame === null || typeof frame !== "object") return call(hooks.raw, data, "raw");
    const name = frame[key];
    if (typeof name === "string") {
      if (!resume || fresh(frame)) call(events.get(name), frame, name);
    } else if ("ref" in frame && typeof frame.ok === "boolean") {
      settle(frame);
    } else if (Array.isArray(frame.errors)) {
      call(hooks.invalid, frame, "invalid");
    } else {
      call(hooks.raw, data, "raw");
    }
  }

  // Whether a frame is not one the page has had; records its id when it is a message id.
  function fresh(frame) {
    let first;
    for (first in frame) break;
    const id = first === "id" && parseId(frame.id);
    if (!id) return true;
    let topic;
    try {
      topic = topicOf(frame);
    } catch (error) {
      report(error, "topic");
    }
    if (topic === null || topic === undefined) return true;
    const last = parseId(lastIds[topic]);
    if (last && last[0] === id[0] && !after(id[1], last[1])) return false;
    lastIds[topic] = frame.id;
    return true;
  }

  function settle(reply) {
    const request = pending.get(reply.ref);
    if (!request) return; // a late reply, after its request timed out
    pending.delete(reply.ref);
    cancel(request.timer);
    if (reply.ok) request.resolve(reply.data);
    else request.reject(new RequestError(request.event, reply));
  }

  const isOpen = () => state === "open" && socket.readyState === OPEN;

  function transmit(data) {
    if (!isOpen()) return false;
    socket.send(data);
    return true;
  }

  function message(event, data, id) {
    if ((data !== undefined && data !== null && typeof data !== "object") || Array.isArray(data)) {
      throw new TypeError(`the data of "${event}" is an object (its fields), got ${JSON.stringify(data)}`);
    }
    const body = { [key]: event, ...data };
    body[key] = event;
    if (id !== undefined) body.ref = id;
    return JSON.stringify(body);
  }

  function request(event, data, { timeout = requestTimeout } = {}) {
    return new Promise((resolve, reject) => {
      if (!isOpen()) {
        const why = `request "${event}" not sent: the connection is ${state}`;
        return reject(new ConnectionClosedError(why));
      }
      const id = ++ref;
      socket.send(message(event, data, id));
      const entry = { event, resolve, reject, timer: null };
      if (timeout > 0 && timeout < Infinity) {
        entry.timer = later(() => {
          pending.delete(id);
          reject(new TimeoutError(event, timeout));
        }, timeout);
      }
      pending.set(id, entry);
    });
  }

  function close(code = 1000, reason = "") {
    if (code !== 1000 && !(code >= 3000 && code <= 4999)) {
      throw new RangeError(`close(code): 1000 or 3000-4999, got ${code}`);
    }
    if (state === "closed") return;
    if (socket) {
      socket.close(code, reason); // throws, before anything changed, on a reason over 123 bytes
      detach();
    }
    rejectPending(code, reason);
    finish(code, reason);
  }

  start(true);
  const initial = socket;
  queueMicrotask(() => {
    if (socket === initial && state === "connecting") enter("connecting");
  });

  return {
    get state() {
      return state;
    },
    get lastIds() {
      return Object.freeze({ ...lastIds });
    },
    on(event, fn) {
      if (!events.has(event)) events.set(event, new Set());
      return listen(events.get(event), fn);
    },
    onState: (fn) => listen(hooks.state, fn),
    onRaw: (fn) => listen(hooks.raw, fn),
    onInvalid: (fn) => listen(hooks.invalid, fn),
    onError: (fn) => listen(hooks.error, fn),
    send: (event, data) => isOpen() && transmit(message(event, data)),
    sendRaw: transmit,
    request,
    close,
    opened() {
      if (state === "open") return Promise.resolve();
      if (state === "closed") return Promise.reject(final);
      return new Promise((resolve, reject) => waiters.push({ resolve, reject }));
    },
  };
}
