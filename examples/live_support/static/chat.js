// Live-support chat client. Vanilla JS, no dependencies.
//
// Incoming messages are trusted markup produced by the server (which escapes
// any user-supplied text), so they are inserted with innerHTML. Outgoing
// messages are the user's own raw input and are only ever inserted with
// textContent.
(function () {
  "use strict";

  var messages = document.getElementById("messages");
  var form = document.getElementById("complaint-form");
  var input = document.getElementById("messageText");
  var statusEl = document.getElementById("status");

  var wsPath = messages.dataset.wsPath || "/";
  var wsUrl =
    (location.protocol === "https:" ? "wss://" : "ws://") +
    location.host +
    wsPath +
    location.search; // pass ?name=... through to the websocket endpoint

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
    var last = messages.lastElementChild;
    if (last && last.scrollIntoView) {
      last.scrollIntoView({ block: "end" });
    }
  }

  setStatus("connecting…", "connecting");
  var ws = new WebSocket(wsUrl);

  ws.addEventListener("open", function () {
    setStatus("connected", "open");
  });

  ws.addEventListener("message", function (event) {
    // Trusted server markup (the server escapes user text).
    appendMessage("msg-in").innerHTML = event.data;
    scrollToBottom();
  });

  ws.addEventListener("close", function (event) {
    setStatus("disconnected (code " + event.code + ")", "closed");
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    if (text.trim() === "") {
      return;
    }
    if (ws.readyState !== WebSocket.OPEN) {
      statusEl.textContent = "not connected – message not sent";
      return;
    }
    // User input: textContent only, never innerHTML.
    appendMessage("msg-out").textContent = text;
    ws.send(text);
    input.value = "";
    input.focus();
    scrollToBottom();
  });
})();
