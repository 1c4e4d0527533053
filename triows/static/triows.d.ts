// Type declarations of triows.js, the browser client of triows, written by hand: keep them in
// step with triows.js (tests/js/usage.ts is type-checked against them).

/** What a connection is doing. */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/** What a state listener is told at each change. */
export interface StateChange {
  /** The state entered. */
  state: ConnectionState;
  /** The close code that caused it ("reconnecting", "closed"), else `null`. */
  code: number | null;
  /** The close reason that came with `code` (often `""`). */
  reason: string;
  /**
   * Reconnects since the last open: 0 on the first connect; on "reconnecting" and the
   * "connecting" after it, the number of the attempt to come; on "open", the attempt that opened.
   */
  attempt: number;
  /** On "reconnecting": the milliseconds until the attempt; else `null`. */
  delay: number | null;
  /** `true` on "closed" (it never reconnects after that), else `false`. */
  forGood: boolean;
}

/** A query parameter's value; `null` and `undefined` leave it out, an array repeats it. */
export type QueryValue = string | number | boolean | null | undefined;
/** Query parameters added to the URL. */
export interface QueryParams {
  [name: string]: QueryValue | readonly QueryValue[];
}

/** One of the errors of pydantic that triows puts in its error frames. */
export interface ValidationErrorDetail {
  type: string;
  loc: (string | number)[];
  msg: string;
  input?: unknown;
  ctx?: { [key: string]: unknown };
  url?: string;
}

/** triows' error frame for a message that failed validation (and had no ref). */
export interface ErrorFrame {
  code: number;
  errors: ValidationErrorDetail[];
}

/** A reply to a message with a ref, as the server sends it. */
export type Reply =
  | { ref: number | string; ok: true; data: unknown }
  | { ref: number | string; ok: false; code: number; errors: ValidationErrorDetail[] };

/** The reconnect policy; the delay of back-off step n is
 * `min(maxDelay, initialDelay * factor ** n) * (1 - jitter * random())`. */
export interface ReconnectOptions {
  /** Milliseconds of the first back-off step, and the most a prompt reconnect (after 1001 or
   * 1012) waits: a random `0..initialDelay`. Default 500. */
  initialDelay?: number;
  /** The back-off's ceiling, in milliseconds. Default 30000. */
  maxDelay?: number;
  /** What each back-off step multiplies the delay by. Default 2. */
  factor?: number;
  /** The share of each delay taken off at random, 0..1: 0.5 gives a delay in `[base/2, base]`.
   * Default 0.5. */
  jitter?: number;
  /** Reconnects in a row without an open before the connection is closed for good (the
   * close's code is the last one's). Default `Infinity`; 0 is `reconnect: false`. */
  maxAttempts?: number;
}

/** Application-level heartbeat, for a server with `heartbeat=("ping", "pong")`. */
export interface HeartbeatOptions {
  /** The text frame sent every `interval`. Default `"ping"`. */
  ping?: string;
  /** The server's answer: a text frame equal to it is never given to the page. Default `"pong"`. */
  pong?: string;
  /** Milliseconds between pings while open; keep it under the server's `idle_timeout`.
   * Default 25000. */
  interval?: number;
  /** Milliseconds after a ping within which some frame (any) must arrive; else the socket is
   * closed with 4000 "heartbeat timeout" and the connection reconnects with back-off.
   * Default 10000. */
  timeout?: number;
}

/** The last message id of each topic, kept to resume after a reconnect. */
export interface LastIds {
  readonly [topic: string]: string;
}

/** Resuming after a reconnect, for routes whose messages carry `"id": "EPOCH:OFFSET"` first. */
export interface ResumeOptions {
  /** The query parameter that carries the last id. Default `"since"`. */
  param?: string;
  /**
   * The id(s) the page already has: its first connect then asks `param=since` too, and messages
   * not after it are dropped. A string is the id of the single default topic (`"*"`).
   */
  since?: string | { [topic: string]: string };
  /**
   * The topic of a message (a frame whose first key is a well-formed `"id"`), to keep one last id
   * per topic; `null` or `undefined`: the frame is neither tracked nor deduplicated. Default: one
   * topic, `"*"`, for the whole connection.
   */
  topic?: (frame: any) => string | null | undefined;
  /**
   * The query parameters to resume with, built from the last ids (called at each connect once
   * there is one). Default: `{[param]: id}` when there is one topic; nothing with several.
   */
  query?: (lastIds: LastIds) => QueryParams;
}

/** A WebSocket, or a test's fake of one: what triows.js uses of it. */
export interface WebSocketLike {
  readonly readyState: number;
  binaryType: string;
  send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
}

/** Options of {@link connect}; every one has a default. */
export interface ConnectOptions {
  /**
   * Query parameters added to the URL, or a function giving them, called at each (re)connect
   * (a fresh token, say). A function that throws at a reconnect is reported to `onError`
   * (source `"connect"`) and counts as a failed attempt.
   */
  params?: QueryParams | (() => QueryParams);
  /**
   * The page's subprotocols; `"triows.v1"` and `"triows.refused"` are always offered after
   * them (how triows tells a refused handshake). Default none.
   */
  protocols?: string | readonly string[];
  /** The field that names an event, as the route declares it. Default `"event"`. */
  discriminator?: string;
  /** The reconnect policy, or `false`: never reconnect. Default {@link ReconnectOptions}'s. */
  reconnect?: ReconnectOptions | false;
  /** A heartbeat (`true` for the defaults), or `null`: none. Default `null`. */
  heartbeat?: HeartbeatOptions | true | null;
  /** Milliseconds a request waits for its reply (`0` or `Infinity`: forever). Default 10000. */
  requestTimeout?: number;
  /** Resuming with the last message id, or `null`: no `since=`, no deduplication.
   * Default `{ param: "since" }`. */
  resume?: ResumeOptions | null | false;
  /** The WebSocket class. Default `globalThis.WebSocket`. */
  WebSocket?: new (url: string, protocols: string[]) => WebSocketLike;
  /** The timer functions (called unbound). Default the global ones. */
  setTimeout?: (callback: () => void, ms: number) => any;
  /** Cancels what `setTimeout` returned (called unbound, also with `null`). */
  clearTimeout?: (handle: any) => void;
  /** A random number in [0, 1), for the jitter. Default `Math.random`. */
  random?: () => number;
}

/** Options of one request. */
export interface RequestOptions {
  /** Milliseconds to wait for the reply (`0` or `Infinity`: forever). Default `requestTimeout`. */
  timeout?: number;
}

/** Event name to frame (server events) or to payload (client events). */
export interface EventMap {
  [event: string]: any;
}

/**
 * A connection that reconnects by itself. `Server` maps the names of the server's events to
 * their frames; `Client` maps the names of the events the page sends to their payloads (the
 * frame less the discriminator); `Replies` maps those to what their replies' `data` is.
 */
export interface Connection<
  Server extends EventMap = EventMap,
  Client extends EventMap = EventMap,
  Replies extends EventMap = EventMap,
> {
  /** The current state. */
  readonly state: ConnectionState;
  /** A frozen copy of the last message id of each topic. */
  readonly lastIds: LastIds;
  /**
   * Listen to a server event (frames whose discriminator is `event`); a frame with an id the page
   * has had already is not given. Events without listeners are ignored.
   * @returns A function that removes the listener.
   */
  on<K extends keyof Server & string>(event: K, listener: (frame: Server[K]) => void): () => void;
  /** Listen to state changes (the first "connecting" included, if added right after connect). */
  onState(listener: (change: StateChange) => void): () => void;
  /** Listen to frames that are neither events, replies nor error frames: text or binary. */
  onRaw(listener: (data: string | ArrayBuffer) => void): () => void;
  /** Listen to the server's error frames for messages without ref (a close 1008 may follow). */
  onInvalid(listener: (frame: ErrorFrame) => void): () => void;
  /**
   * Listen to errors thrown by listeners (`source`: the event name, `"state"`, `"raw"`,
   * `"invalid"`) or by options' functions (`"connect"`, `"topic"`). Without one, they go to
   * `console.error`. A listener's error never breaks the connection.
   */
  onError(listener: (error: unknown, source: string) => void): () => void;
  /**
   * Send an event: `{[discriminator]: event, ...data}` (`data` an object, else a `TypeError`).
   * @returns `true` if sent, `false` if not open: nothing is queued for a later connection.
   */
  send<K extends keyof Client & string>(event: K, data?: Client[K]): boolean;
  /** Send a text or binary frame as it is. @returns `true` if sent, `false` if not open. */
  sendRaw(data: string | ArrayBufferLike | Blob | ArrayBufferView): boolean;
  /**
   * Send an event with a `ref` and wait for its reply: resolved with the reply's `data`; rejected
   * with a {@link RequestError} (ok: false), a {@link TimeoutError}, or a
   * {@link ConnectionClosedError} when not open or when the connection closes first. A request is
   * never re-sent after a reconnect.
   */
  request<K extends keyof Client & string>(
    event: K,
    data?: Client[K],
    options?: RequestOptions,
  ): Promise<K extends keyof Replies ? Replies[K] : unknown>;
  /**
   * Close for good (pending requests rejected, no reconnect).
   * @param code 1000 (the default) or 3000-4999, else a `RangeError`.
   * @param reason At most 123 bytes of UTF-8 (the WebSocket's own limit).
   */
  close(code?: number, reason?: string): void;
  /**
   * Resolved at the next open (at once if open); rejected with a {@link ConnectionClosedError}
   * if the connection is, or ends, closed for good. A handshake that triows refused does not
   * open (triows accepts it with "triows.refused" only to close it with 4000 + status).
   */
  opened(): Promise<void>;
}

/**
 * Open a connection to a triows websocket route. A relative `url` is resolved against
 * `location`, http(s) becoming ws(s).
 * @throws The URL's or the WebSocket constructor's error, at once.
 */
export function connect<
  Server extends EventMap = EventMap,
  Client extends EventMap = EventMap,
  Replies extends EventMap = EventMap,
>(url: string | URL, options?: ConnectOptions): Connection<Server, Client, Replies>;

/** The base class of the errors triows.js rejects with. */
export class TriowsError extends Error {
  constructor(message: string);
}

/** The server answered a request with ok: false (the message failed validation). */
export class RequestError extends TriowsError {
  constructor(event: string, reply: { code: number; errors?: ValidationErrorDetail[] });
  /** The reply's code: 1008. */
  readonly code: number;
  /** The reply's errors. */
  readonly errors: ValidationErrorDetail[];
}

/** No reply came within the request's timeout. */
export class TimeoutError extends TriowsError {
  constructor(event: string, timeout: number);
  /** The timeout, in milliseconds. */
  readonly timeout: number;
}

/** The connection was not open, or closed before the reply (or for good, for `opened()`). */
export class ConnectionClosedError extends TriowsError {
  constructor(message: string, code?: number | null, reason?: string);
  /** The close code; `null` when the request found the connection not open. */
  readonly code: number | null;
  /** The close reason. */
  readonly reason: string;
}
