// The console's only script: confirmations, and pages that follow their instances live
// (Server-Sent Events from the console's own streams). Everything it shows arrives either as
// text (textContent) or as HTML the server rendered and escaped.
"use strict";
(function () {
  document.addEventListener("submit", function (e) {
    var ask = e.target.dataset.confirm;
    if (ask && !window.confirm(ask)) e.preventDefault();
  });

  // Open el's stream (data-stream, resumed after data-after) and hand each message of the
  // kinds in data-kinds to onItem. The browser reconnects by itself with Last-Event-ID; the
  // server answers 204 when nothing more will come, which ends it.
  function follow(el, onItem) {
    var url = el.dataset.stream;
    if (el.dataset.after) url += "?after=" + encodeURIComponent(el.dataset.after);
    var source = new EventSource(url);
    source.addEventListener("open", function () { el.dataset.following = "true"; });
    el.dataset.kinds.split(" ").forEach(function (kind) {
      source.addEventListener(kind, function (m) { onItem(JSON.parse(m.data)); });
    });
    return source;
  }

  function span(cls, text) {
    var s = document.createElement("span");
    s.className = cls;
    s.textContent = text;
    return s;
  }

  // The instance page: the timeline grows, the header and nodes are fetched again.
  var live = document.getElementById("live");
  var asked = 0;
  function refreshLive() {
    var mine = ++asked;
    fetch(live.dataset.live, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null && mine === asked) live.innerHTML = html; });
  }
  var events = document.getElementById("events");
  if (events && events.dataset.stream) {
    follow(events, function (event) {
      if (events.querySelector('[data-event="' + event.id + '"]')) return;
      var li = document.createElement("li");
      li.dataset.event = event.id;
      li.appendChild(span("", event.at));
      li.appendChild(document.createTextNode(" "));
      li.appendChild(span("status status-" + event.status, event.status));
      li.appendChild(document.createTextNode(" "));
      li.appendChild(span("step", event.step));
      li.appendChild(document.createTextNode(" " + event.message));
      events.appendChild(li);
      if (live) refreshLive();
    });
  }
  var logs = document.getElementById("logs");
  if (logs && logs.dataset.stream) {
    follow(logs, function (line) {
      var atEnd = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
      logs.appendChild(document.createTextNode(
        line.command + " " + line.stream + ": " + line.line + "\n"));
      if (atEnd) logs.scrollTop = logs.scrollHeight;
    });
  }

  // The instance list: each row's status follows its instance's events.
  var list = document.getElementById("instances");
  if (list && list.dataset.stream) {
    follow(list, function (event) {
      var row = list.querySelector('[data-instance="' + event.instance_id + '"]');
      var cell = row && row.querySelector("[data-status]");
      if (!cell) return;
      cell.textContent = event.status;
      cell.className = "status status-" + event.status;
    });
  }
})();
