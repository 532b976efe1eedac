// The chat page: join a room over a websocket, show the room's events, send what is typed.
//
// Three parts: the page's views (the join form or the room), the log of events, and the
// connection. Each server event has a renderer in `render`; the connection's life is in
// `connect`, and what a close means for the reader is decided in `describeClose`.
//
// A connection that drops after it was open comes back by itself (backoff: 0.25 s doubling up
// to 5 s) with the position of the last event shown, and the server sends what was missed.
"use strict";

const $ = (id) => document.getElementById(id);

/** The one connection of this page: null until joining, and again once it closed. */
let socket = null;
/** The room the page is in, {nick, room}, also while it reconnects; null otherwise. */
let member = null;
/** [epoch, offset] of the last room event shown: where a reconnection resumes. */
let lastPos = null;
let delay = 250;
let retry = null;
/** True from a drop until a connection is open again. */
let resuming = false;

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
    show(lastPos ? "reconnected" : `you joined ${e.room} as ${e.nick}`, "notice");
    if (!lastPos && e.pos && e.pos.length === 2) lastPos = e.pos;
  },
  unrecovered: () => {
    $("log").replaceChildren(); // what was shown may miss events: start afresh
    show("some messages could not be recovered", "gap");
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
  if (lastPos) query.set("since", `${lastPos[0]}:${lastPos[1]}`);
  return `${scheme}://${location.host}/rooms/${encodeURIComponent(room)}?${query}`;
}

/** What a close means for the reader: the server's reason where it gave one. */
function describeClose(close) {
  if (close.reason) return { text: close.reason, problem: close.code !== 1000 };
  if (close.code === 1000) return { text: "you left the room", problem: false };
  if (close.code === 1001) return { text: "the server is restarting", problem: true };
  return { text: `connection lost (code ${close.code})`, problem: true };
}

/** Whether a close is worth reconnecting after: a drop of a connection that was open (or of
 * a reconnection), not a leave, a refusal or a policy close. A page that read too slowly is
 * closed with 1008 "too slow: ..." (shallot's send_timeout, docs/websockets.md) or 1013 (the
 * room went on without it): it comes back from the last event it showed, like after a drop. */
function worthRetrying(close, opened) {
  const tooSlow = close.code === 1008 && close.reason.startsWith("too slow");
  const deliberate = close.code === 1000 || (close.code === 1008 && !tooSlow) || close.code >= 4000;
  return (opened || resuming) && member !== null && !deliberate;
}

function connect(nick, room) {
  if (socket !== null) return; // one connection at a time: a second click does nothing
  $("join-button").disabled = true;
  member = { nick, room };
  setStatus(lastPos ? "reconnecting…" : "connecting…");
  let opened = false;
  socket = new WebSocket(roomUrl(nick, room));
  socket.onopen = () => {
    opened = true;
    resuming = false;
    delay = 250;
    showRoom();
  };
  socket.onmessage = (message) => {
    const e = JSON.parse(message.data);
    (render[e.type] || ((x) => show(JSON.stringify(x), "notice")))(e);
    if (e.type !== "welcome" && e.pos) lastPos = e.pos;
  };
  socket.onclose = (close) => {
    socket = null;
    if (worthRetrying(close, opened)) {
      // dropped: come back by ourselves, from the last event shown
      resuming = true;
      setStatus(`connection lost (${close.code}); reconnecting in ${delay / 1000} s`, true);
      retry = setTimeout(() => {
        retry = null;
        connect(member.nick, member.room);
      }, delay);
      delay = Math.min(delay * 2, 5000);
      return;
    }
    member = null;
    resuming = false;
    const { text, problem } = describeClose(close);
    setStatus(text, problem);
    showJoinForm();
  };
}

$("join").addEventListener("submit", (event) => {
  event.preventDefault();
  if (socket !== null) return;
  $("log").replaceChildren();
  lastPos = null;
  delay = 250;
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

$("leave").addEventListener("click", () => {
  member = null;
  resuming = false;
  clearTimeout(retry);
  retry = null;
  if (socket) {
    socket.close(1000);
  } else {
    setStatus("you left the room");
    showJoinForm();
  }
});
