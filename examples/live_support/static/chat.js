// Live-support chat page, on triows.js (the app serves it at /triows.js; docs/client.md).
//
// The route speaks plain text, not JSON events: the page sends the user's text as it is
// (sendRaw) and gets each frame as it came ("raw"). Incoming messages are trusted markup
// produced by the server (which escapes any user-supplied text), so they are inserted with
// innerHTML; outgoing messages are the user's own input, only ever inserted with textContent.
//
// The server's first message on each connection is its welcome, shown above the conversation.
// triows.js reconnects by itself: at once after a server restart (close 1012), with a
// jittered back-off that doubles (0.5 s, 1 s, 2 s … at most 30 s) while the server is away.
import { connect } from "/triows.js";

const messages = document.getElementById("messages");
const welcome = document.getElementById("welcome");
const form = document.getElementById("complaint-form");
const input = document.getElementById("messageText");
const statusEl = document.getElementById("status");

function setStatus(text, state) {
  statusEl.textContent = text;
  document.body.dataset.wsState = state;
}

function appendMessage(className) {
  const li = document.createElement("li");
  li.className = "msg " + className;
  const p = document.createElement("p");
  li.appendChild(p);
  messages.appendChild(li);
  return p;
}

function scrollToBottom() {
  // The list scrolls, not the page: the heading and the welcome stay in view.
  messages.scrollTop = messages.scrollHeight;
}

// ?name=... is passed through to the websocket endpoint.
const params = Object.fromEntries(new URLSearchParams(location.search));
const conn = connect(messages.dataset.wsPath || "/", { params });
window.supportConnection = conn; // for the browser tests
let first = true;

conn.onState((state) => {
  if (state.state === "open") {
    first = true; // each connection begins with its welcome
    setStatus("connected", "open");
  } else if (state.state === "reconnecting") {
    setStatus(
      "disconnected (code " + state.code + "), reconnecting in " +
        Math.ceil(state.delay / 1000) + " s…",
      "reconnecting"
    );
  } else if (state.state === "closed") {
    setStatus("disconnected (code " + state.code + ")", "closed");
  } else {
    setStatus("connecting…", "connecting");
  }
});

conn.onRaw((data) => {
  if (first) {
    first = false;
    welcome.innerHTML = data;
    welcome.hidden = false;
    return;
  }
  appendMessage("msg-in").innerHTML = data;
  scrollToBottom();
});

function send() {
  const text = input.value;
  if (text.trim() === "") return;
  if (!conn.sendRaw(text)) {
    statusEl.textContent = "not connected – message not sent";
    return;
  }
  appendMessage("msg-out").textContent = text;
  input.value = "";
  input.focus();
  scrollToBottom();
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
