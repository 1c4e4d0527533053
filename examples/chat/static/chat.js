// Multi-room chat page, on triows.js (the app serves it at /triows.js; docs/client.md).
//
// The protocol (docs/channels.md, "The chat example and its protocol"): the websocket
// /chat/ROOM/ws?name=NAME sends presence_state first, then message frames (the page's own
// included: it shows what the server published, not what it sent), presence_diff frames
// and, after a reconnect with since=ID, the messages missed or a gap frame.
//
// triows.js reconnects by itself (jittered exponential back-off; at once after a server
// restart, code 1012; never after a refusal), sends the heartbeat the route answers, and
// resumes: it reconnects with since= the last message id it saw and drops what it has already
// shown, so a replay shows each missed message once, in order.
//
// Everything users wrote (names, messages) is inserted with textContent, never innerHTML.
import { connect } from "/triows.js";

const MAX_TEXT = 2000;
const MAX_NAME = 32;

const room = document.getElementById("room");
const statusEl = document.getElementById("status");
const nameForm = document.getElementById("name-form");
const chat = document.getElementById("chat");
const membersEl = document.getElementById("members");
const messagesEl = document.getElementById("messages");
const notice = document.getElementById("notice");
const form = document.getElementById("say-form");
const input = document.getElementById("text");

const name = (new URLSearchParams(location.search).get("name") || "").trim();
let members = [];

function showNotice(text) {
  notice.textContent = text;
  notice.hidden = false;
}

function renderMembers() {
  membersEl.replaceChildren(
    ...members.map((member) => {
      const li = document.createElement("li");
      li.textContent = member;
      if (member === name) li.className = "me";
      return li;
    })
  );
}

function showMessage(message) {
  const li = document.createElement("li");
  li.className = message.name === name ? "msg mine" : "msg";
  li.dataset.id = message.id;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = message.name;
  const text = document.createElement("p");
  text.className = "text";
  text.textContent = message.text;
  li.append(who, text);
  messagesEl.appendChild(li);
  messagesEl.scrollTop = messagesEl.scrollHeight;
}

function describe(state) {
  switch (state.state) {
    case "connecting":
      return "connecting…";
    case "open":
      return "connected as " + name;
    case "reconnecting":
      return (
        "disconnected (code " + state.code + "), reconnecting in " +
        Math.ceil(state.delay / 1000) + " s…"
      );
    default:
      return "disconnected for good (code " + state.code + (state.reason ? ": " + state.reason : "") + ")";
  }
}

function start() {
  const conn = connect(room.dataset.wsPath, {
    params: { name },
    resume: { param: "since" },
    // The route answers "ping" with "pong" and closes a client silent for 60 s.
    heartbeat: { ping: "ping", pong: "pong", interval: 20000, timeout: 10000 },
    reconnect: { initialDelay: 500, maxDelay: 10000 },
  });
  window.chatConnection = conn; // for the browser tests, and for a curious console

  conn.onState((state) => {
    statusEl.textContent = describe(state);
    document.body.dataset.wsState = state.state;
  });
  conn.on("presence_state", (frame) => {
    members = frame.members.slice();
    renderMembers();
  });
  conn.on("presence_diff", (frame) => {
    members = members.filter((member) => !frame.leaves.includes(member));
    for (const member of frame.joins) {
      if (!members.includes(member)) members.push(member);
    }
    members.sort();
    renderMembers();
  });
  conn.on("message", showMessage);
  conn.on("gap", () => {
    showNotice("Reconnected: some messages may be missing (reload the page to start afresh).");
  });
  // triows' error frame for a message that failed validation: the connection stays.
  conn.onInvalid((frame) => showNotice("Not sent: " + frame.errors[0].msg));

  function send() {
    const text = input.value;
    if (text.trim() === "") return;
    if (text.length > MAX_TEXT) {
      showNotice("A message is at most " + MAX_TEXT + " characters.");
      return;
    }
    // Not shown yet: it appears when the server publishes it, in the room's order.
    if (!conn.send("say", { text })) {
      showNotice("Not connected: message not sent.");
      return;
    }
    notice.hidden = true;
    input.value = "";
    input.focus();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  // Enter sends; Shift+Enter (or Enter while an input method composes) writes a new line.
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
}

if (name === "" || name.length > MAX_NAME) {
  // No name yet: the form reloads this page with ?name=.
  nameForm.hidden = false;
  document.getElementById("name").focus();
  statusEl.textContent = "pick a name to join";
  document.body.dataset.wsState = "idle";
} else {
  chat.hidden = false;
  input.focus();
  start();
}
