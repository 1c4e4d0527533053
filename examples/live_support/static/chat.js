// Live-support chat client. Vanilla JS, no dependencies.
//
// Incoming messages are trusted markup produced by the server (which escapes
// any user-supplied text), so they are inserted with innerHTML. Outgoing
// messages are the user's own raw input and are only ever inserted with
// textContent.
//
// The server's first message on a connection is its welcome, shown above the
// conversation. When the connection closes, the page reconnects after a delay
// that doubles each time (1 s, 2 s, 4 s … at most 30 s), with some randomness
// so that many pages do not come back at the same moment (after a server
// restart, code 1012, everybody would otherwise).
(function () {
  "use strict";

  var messages = document.getElementById("messages");
  var welcome = document.getElementById("welcome");
  var form = document.getElementById("complaint-form");
  var input = document.getElementById("messageText");
  var statusEl = document.getElementById("status");

  var wsPath = messages.dataset.wsPath || "/";
  var wsUrl =
    (location.protocol === "https:" ? "wss://" : "ws://") +
    location.host +
    wsPath +
    location.search; // pass ?name=... through to the websocket endpoint

  var FIRST_DELAY = 1000;
  var MAX_DELAY = 30000;
  var delay = FIRST_DELAY;
  var ws = null;

  function setStatus(text, state) {
    statusEl.textContent = text;
    if (state) {
      document.body.dataset.wsState = state;
    }
  }

  function appendMessage(className) {
    var li = document.createElement("li");
    li.className = "msg " + className;
    var p = document.createElement("p");
    li.appendChild(p);
    messages.appendChild(li);
    return p;
  }

  function scrollToBottom() {
    // The list scrolls, not the page: the heading and the welcome stay in view.
    messages.scrollTop = messages.scrollHeight;
  }

  function connect() {
    setStatus("connecting…", "connecting");
    var socket = new WebSocket(wsUrl);
    var first = true;
    ws = socket;

    socket.addEventListener("open", function () {
      delay = FIRST_DELAY;
      setStatus("connected", "open");
    });

    socket.addEventListener("message", function (event) {
      // Trusted server markup (the server escapes user text).
      if (first) {
        first = false;
        welcome.innerHTML = event.data;
        welcome.hidden = false;
        return;
      }
      appendMessage("msg-in").innerHTML = event.data;
      scrollToBottom();
    });

    socket.addEventListener("close", function (event) {
      var wait = Math.round(delay * (0.5 + Math.random() / 2));
      delay = Math.min(delay * 2, MAX_DELAY);
      setStatus(
        "disconnected (code " + event.code + "), reconnecting in " +
          Math.ceil(wait / 1000) + " s…",
        "closed"
      );
      setTimeout(connect, wait);
    });
  }

  function send() {
    var text = input.value;
    if (text.trim() === "") {
      return;
    }
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      statusEl.textContent = "not connected – message not sent";
      return;
    }
    // User input: textContent only, never innerHTML.
    appendMessage("msg-out").textContent = text;
    ws.send(text);
    input.value = "";
    input.focus();
    scrollToBottom();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    send();
  });

  // Enter sends; Shift+Enter (or Enter while an input method composes) writes a new line.
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });

  connect();
})();
