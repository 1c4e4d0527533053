// Multi-room chat client. Vanilla JS, no dependencies.
//
// The protocol (docs/channels.md, "The chat example and its protocol"): the websocket
// /chat/ROOM/ws?name=NAME sends presence_state first, then message frames (the page's own
// included: it shows what the server published, not what it sent), presence_diff frames
// and, after a reconnect with since=ID, the messages missed or a gap frame.
//
// Everything users wrote (names, messages) is inserted with textContent, never innerHTML.
//
// When the connection closes, the page reconnects after a delay that doubles each time
// (1 s, 2 s, 4 s … at most 30 s), with some randomness so that many pages do not come back
// at the same moment, and asks for what it missed: since= the id of the last message it has.
(function () {
  "use strict";

  var MAX_TEXT = 2000;
  var MAX_NAME = 32;
  var FIRST_DELAY = 1000;
  var MAX_DELAY = 30000;

  var room = document.getElementById("room");
  var statusEl = document.getElementById("status");
  var nameForm = document.getElementById("name-form");
  var chat = document.getElementById("chat");
  var membersEl = document.getElementById("members");
  var messagesEl = document.getElementById("messages");
  var notice = document.getElementById("notice");
  var form = document.getElementById("say-form");
  var input = document.getElementById("text");

  var name = (new URLSearchParams(location.search).get("name") || "").trim();
  var members = [];
  var lastId = null; // the id of the last message shown: since= on a reconnect
  var delay = FIRST_DELAY;
  var ws = null;

  function setStatus(text, state) {
    statusEl.textContent = text;
    document.body.dataset.wsState = state;
  }

  function showNotice(text) {
    notice.textContent = text;
    notice.hidden = false;
  }

  function renderMembers() {
    membersEl.replaceChildren();
    members.forEach(function (member) {
      var li = document.createElement("li");
      li.textContent = member;
      if (member === name) {
        li.className = "me";
      }
      membersEl.appendChild(li);
    });
  }

  function showMessage(message) {
    var li = document.createElement("li");
    li.className = message.name === name ? "msg mine" : "msg";
    li.dataset.id = message.id;
    var who = document.createElement("span");
    who.className = "who";
    who.textContent = message.name;
    var text = document.createElement("p");
    text.className = "text";
    text.textContent = message.text;
    li.append(who, text);
    messagesEl.appendChild(li);
    messagesEl.scrollTop = messagesEl.scrollHeight;
    lastId = message.id;
  }

  var handlers = {
    presence_state: function (frame) {
      members = frame.members.slice();
      renderMembers();
    },
    presence_diff: function (frame) {
      members = members.filter(function (member) {
        return frame.leaves.indexOf(member) < 0;
      });
      frame.joins.forEach(function (member) {
        if (members.indexOf(member) < 0) {
          members.push(member);
        }
      });
      members.sort();
      renderMembers();
    },
    message: showMessage,
    gap: function () {
      showNotice("Reconnected: some messages may be missing (reload the page to start afresh).");
    },
  };

  function wsUrl() {
    var query = "?name=" + encodeURIComponent(name);
    if (lastId !== null) {
      query += "&since=" + encodeURIComponent(lastId);
    }
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + location.host + room.dataset.wsPath + query;
  }

  function connect() {
    setStatus("connecting…", "connecting");
    var socket = new WebSocket(wsUrl());
    ws = socket;

    socket.addEventListener("open", function () {
      delay = FIRST_DELAY;
      setStatus("connected as " + name, "open");
    });

    socket.addEventListener("message", function (event) {
      var frame = JSON.parse(event.data);
      var handler = handlers[frame.event];
      if (handler) {
        handler(frame);
      } else if (frame.errors) {
        // triows' error frame for a message that failed validation: the connection stays.
        showNotice("Not sent: " + frame.errors[0].msg);
      }
    });

    socket.addEventListener("close", function (event) {
      ws = null;
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
    if (text.length > MAX_TEXT) {
      showNotice("A message is at most " + MAX_TEXT + " characters.");
      return;
    }
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      showNotice("Not connected: message not sent.");
      return;
    }
    // Not shown yet: it appears when the server publishes it, in the room's order.
    ws.send(JSON.stringify({ event: "say", text: text }));
    notice.hidden = true;
    input.value = "";
    input.focus();
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

  if (name === "" || name.length > MAX_NAME) {
    // No name yet: the form reloads this page with ?name=.
    nameForm.hidden = false;
    document.getElementById("name").focus();
    setStatus("pick a name to join", "idle");
    return;
  }
  chat.hidden = false;
  input.focus();
  connect();
})();
