// The chat page: join a room over a websocket, show the room's events, send what is typed.
"use strict";

const $ = (id) => document.getElementById(id);
let socket = null;

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
    show(`you joined ${e.room} as ${e.nick}`, "notice");
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
  socket = new WebSocket(`${scheme}://${location.host}/rooms/${encodeURIComponent(room)}?${query}`);
  $("status").textContent = "connecting…";
  socket.onopen = () => {
    $("join").hidden = true;
    $("chat").hidden = false;
    $("message").focus();
  };
  socket.onmessage = (message) => {
    const e = JSON.parse(message.data);
    (render[e.type] || ((x) => show(JSON.stringify(x), "notice")))(e);
  };
  socket.onclose = (close) => {
    $("status").textContent = `disconnected (${close.code})`;
    $("join").hidden = false;
    $("chat").hidden = true;
    socket = null;
  };
}

$("join").addEventListener("submit", (event) => {
  event.preventDefault();
  $("log").replaceChildren();
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

$("leave").addEventListener("click", () => socket && socket.close(1000));
