// A page's use of triows.js, type-checked against triows.d.ts by check-types.sh (tsc --strict).
// Never run: each @ts-expect-error line must be an error, every other line must not.

import {
  ConnectionClosedError,
  RequestError,
  TimeoutError,
  TriowsError,
  connect,
  type Connection,
  type ConnectOptions,
  type StateChange,
  type WebSocketLike,
} from "../../triows/static/triows.js";

// Untyped: any event name, frames are `any`.
const conn = connect("/chat/lobby/ws", {
  params: { name: "ann", n: 1, tags: ["a", "b"], gone: null },
  protocols: ["chat"],
  discriminator: "event",
  reconnect: { initialDelay: 500, maxDelay: 30000, factor: 2, jitter: 0.5, maxAttempts: Infinity },
  heartbeat: { ping: "ping", pong: "pong", interval: 25000, timeout: 10000 },
  requestTimeout: 10000,
  resume: { param: "since", since: "k3j2:17", topic: (frame) => frame.room, query: (ids) => ({ since: ids["*"] }) },
  WebSocket: globalThis.WebSocket,
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle),
  random: Math.random,
});
const state: "connecting" | "open" | "reconnecting" | "closed" = conn.state;
const off: () => void = conn.on("message", (frame) => console.log(frame.text));
off();
conn.onState((change: StateChange) => {
  const delay: number | null = change.delay;
  const code: number | null = change.code;
  console.log(change.state, delay, code, change.reason, change.attempt, change.forGood);
});
conn.onRaw((data) => (typeof data === "string" ? data.length : data.byteLength));
conn.onInvalid((frame) => frame.errors.map((error) => `${error.loc.join(".")}: ${error.msg}`));
conn.onError((error, source) => console.warn(source, error));
const sent: boolean = conn.send("say", { text: "hi" });
conn.sendRaw("ping");
conn.sendRaw(new Uint8Array([1]));
const id: string | undefined = conn.lastIds["*"];
conn.close();
conn.close(4001, "bye");
void conn.opened().then(() => undefined);

async function ask(): Promise<void> {
  try {
    const data: unknown = await conn.request("say", { text: "hi" }, { timeout: 5000 });
    console.log(data);
  } catch (error) {
    if (error instanceof RequestError) console.log(error.code, error.errors[0]?.msg);
    else if (error instanceof TimeoutError) console.log(error.timeout);
    else if (error instanceof ConnectionClosedError) console.log(error.code, error.reason);
    if (error instanceof TriowsError) console.log(error.message);
  }
}

// Typed: the server's events, the page's events, the replies.
interface Message {
  id: string;
  event: "message";
  room: string;
  name: string;
  text: string;
}
interface ServerEvents {
  message: Message;
  presence_state: { event: "presence_state"; members: string[] };
  gap: { event: "gap"; topic: string; since: string | null };
}
interface ClientEvents {
  say: { text: string };
}
interface Replies {
  say: { id: string };
}
const chat: Connection<ServerEvents, ClientEvents, Replies> = connect<ServerEvents, ClientEvents, Replies>(
  new URL("wss://chat.example/chat/lobby/ws"),
);
chat.on("message", (frame) => {
  const text: string = frame.text;
  console.log(text);
});
chat.on("gap", (frame) => console.log(frame.topic));
chat.send("say", { text: "hi" });
async function typedAsk(): Promise<string> {
  const reply = await chat.request("say", { text: "hi" });
  return reply.id;
}

// A test's fake WebSocket fits the option, and so does the real one.
class FakeSocket implements WebSocketLike {
  readyState = 0;
  binaryType = "blob";
  onopen: ((event: any) => void) | null = null;
  onmessage: ((event: any) => void) | null = null;
  onclose: ((event: any) => void) | null = null;
  onerror: ((event: any) => void) | null = null;
  constructor(readonly url: string, readonly protocols: string[]) {}
  send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {}
  close(code?: number, reason?: string): void {}
}
const options: ConnectOptions = { WebSocket: FakeSocket, reconnect: false, heartbeat: true, resume: null };
const realOne: ConnectOptions = { WebSocket: WebSocket };
connect("ws://localhost/ws", options);

// What the declarations refuse.
// @ts-expect-error not a state
const wrong: typeof conn.state = "opening";
// @ts-expect-error not an event of the server
chat.on("say", () => undefined);
// @ts-expect-error the payload of "say" has a text
chat.send("say", { body: "hi" });
// @ts-expect-error a reply of "say" has no text
void chat.request("say", { text: "" }).then((reply) => reply.text);
// @ts-expect-error reconnect is an object or false
connect("/ws", { reconnect: true });
// @ts-expect-error lastIds is read-only
conn.lastIds["*"] = "k:1";
// @ts-expect-error state is read-only
conn.state = "closed";

export { ask, id, off, realOne, sent, state, typedAsk, wrong };
