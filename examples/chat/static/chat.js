// The chat page: join a room over a websocket, show the room's events, send what is typed.
//
// Three parts: the page's views (the join form or the room), the log of events, and the
// connection. Each server event has a renderer in `render`; the connection's life is in
// `connect`, and what a close means for the reader is decided in `describeClose`.
"use strict";

const $ = (id) => document.getElementById(id);

/** The one connection of this page: null until joining, and again once it closed. */
let socket = null;

// -- the page's views -------------------------------------------------------------------------

function setStatus(text, problem = false) {
  $("status").textContent = text;
  $("status").classList.toggle("problem", problem);
}

function showJoinForm() {
  $("chat").hidden = true;
  $("join").hidden = false;
  $("join-button").disabled = false;
}

function showRoom() {
  $("join").hidden = true;
  $("chat").hidden = false;
  $("message").focus();
}

// -- the log ----------------------------------------------------------------------------------

function show(text, kind, nick) {
  const item = document.createElement("li");
  item.className = kind;
  if (nick !== undefined) {
    const who = document.createElement("span");
    who.className = "nick";
    who.textContent = `${nick}: `;
    item.append(who);
  }
  item.append(document.createTextNode(text));
  $("log").append(item);
  $("log").scrollTop = $("log").scrollHeight;
}

/** One renderer per server event (see examples/chat/app.py). */
const render = {
  welcome: (e) => {
    setStatus(`${e.nick} in ${e.room}`);
    show(`you joined ${e.room} as ${e.nick}`, "notice");
  },
  joined: (e) => show(`${e.nick} joined`, "notice"),
  left: (e) => show(`${e.nick} left`, "notice"),
  message: (e) => show(e.text, "message", e.nick),
  gap: (e) => show(`some messages may be missing (${e.reason})`, "gap"),
  error: (e) => show(e.text, "error"),
};

// -- the connection ---------------------------------------------------------------------------

function roomUrl(nick, room) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = new URLSearchParams({ nick });
  return `${scheme}://${location.host}/rooms/${encodeURIComponent(room)}?${query}`;
}

/** What a close means for the reader: the server's reason where it gave one. */
function describeClose(close) {
  if (close.reason) return { text: close.reason, problem: close.code !== 1000 };
  if (close.code === 1000) return { text: "you left the room", problem: false };
  if (close.code === 1001) return { text: "the server is restarting", problem: true };
  return { text: `connection lost (code ${close.code})`, problem: true };
}

function connect(nick, room) {
  if (socket !== null) return; // one connection at a time: a second click does nothing
  $("join-button").disabled = true;
  setStatus("connecting…");
  socket = new WebSocket(roomUrl(nick, room));
  socket.onopen = showRoom;
  socket.onmessage = (message) => {
    const e = JSON.parse(message.data);
    (render[e.type] || ((x) => show(JSON.stringify(x), "notice")))(e);
  };
  socket.onclose = (close) => {
    socket = null;
    const { text, problem } = describeClose(close);
    setStatus(text, problem);
    showJoinForm();
  };
}

$("join").addEventListener("submit", (event) => {
  event.preventDefault();
  if (socket !== null) return;
  $("log").replaceChildren();
  connect($("nick").value.trim(), $("room").value.trim());
});

$("say").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("message").value;
  if (socket && socket.readyState === WebSocket.OPEN && text.trim()) {
    socket.send(text);
    $("message").value = "";
  }
});

$("leave").addEventListener("click", () => socket && socket.close(1000));
