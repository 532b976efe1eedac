// The chat page: join a room over a websocket, show the room's events, send what is typed.
// When the connection drops, it reconnects by itself (backoff: 0.25 s doubling up to 5 s) with
// the position of the last event shown, and the server sends what was missed meanwhile.
"use strict";

const $ = (id) => document.getElementById(id);
let socket = null;
let joined = null; // {nick, room} while in a room (also while reconnecting)
let lastPos = null; // [epoch, offset] of the last room event shown
let delay = 250;
let retry = null;

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

const render = {
  welcome: (e) => {
    $("status").textContent = `${e.nick} in ${e.room} (served by process ${e.pid})`;
    show(lastPos ? "reconnected" : `you joined ${e.room} as ${e.nick}`, "notice");
    if (!lastPos && e.pos && e.pos.length === 2) lastPos = e.pos;
  },
  unrecovered: (e) => {
    $("log").replaceChildren(); // what we showed may miss events: start afresh
    show("some messages could not be recovered", "gap");
  },
  joined: (e) => show(`${e.nick} joined`, "notice"),
  left: (e) => show(`${e.nick} left`, "notice"),
  message: (e) => show(e.text, "message", e.nick),
  gap: (e) => show(`some messages may be missing (${e.reason})`, "gap"),
  error: (e) => show(e.text, "error"),
};

function join(nick, room) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = new URLSearchParams({ nick });
  if (lastPos) query.set("since", `${lastPos[0]}:${lastPos[1]}`);
  joined = { nick, room };
  socket = new WebSocket(`${scheme}://${location.host}/rooms/${encodeURIComponent(room)}?${query}`);
  $("status").textContent = lastPos ? "reconnecting…" : "connecting…";
  socket.onopen = () => {
    delay = 250;
    $("join").hidden = true;
    $("chat").hidden = false;
    $("message").focus();
  };
  socket.onmessage = (message) => {
    const e = JSON.parse(message.data);
    (render[e.type] || ((x) => show(JSON.stringify(x), "notice")))(e);
    if (e.type !== "welcome" && e.pos) lastPos = e.pos;
  };
  socket.onclose = (close) => {
    socket = null;
    if (joined && close.code !== 1000) {
      // dropped: come back by ourselves, from the last event shown
      $("status").textContent = `connection lost (${close.code}); reconnecting in ${delay / 1000} s`;
      retry = setTimeout(() => join(joined.nick, joined.room), delay);
      delay = Math.min(delay * 2, 5000);
      return;
    }
    $("status").textContent = `disconnected (${close.code})`;
    $("join").hidden = false;
    $("chat").hidden = true;
  };
}

$("join").addEventListener("submit", (event) => {
  event.preventDefault();
  $("log").replaceChildren();
  lastPos = null;
  delay = 250;
  join($("nick").value.trim(), $("room").value.trim());
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
  joined = null;
  clearTimeout(retry);
  if (socket) socket.close(1000);
});
