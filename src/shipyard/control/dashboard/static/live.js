// The live deploy / canary view: renders each document of the /events stream (server-sent events).
(function () {
  "use strict";
  var init = JSON.parse(document.getElementById("live-init").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var text = function (id, v) { $(id).textContent = v === null || v === undefined ? "-" : String(v); };
  var fmt = function (v, digits) { return v === null || v === undefined ? "-" : Number(v).toFixed(digits); };
  var isRate = function (name) { return name === "errors"; };
  var value = function (name, v) {
    if (v === null || v === undefined) return "-";
    return isRate(name) ? (v * 100).toFixed(3) + "%" : (v * 1000).toFixed(1) + " ms";
  };
  var when = function (t) { return t ? new Date(t * 1000).toLocaleTimeString() : "-"; };

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) { e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return e;
  }

  function form(action, label, fields) {
    var f = el("form", { method: "post", action: "/action", "class": "inline" });
    var all = Object.assign({ csrf: init.csrf, action: action, back: "/live?env=" + init.env }, fields);
    Object.keys(all).forEach(function (k) { f.appendChild(el("input", { type: "hidden", name: k, value: all[k] })); });
    f.appendChild(el("button", { "class": action, "data-action": action }, [label]));
    return f;
  }

  function render(d) {
    var live = $("live");
    text("release", d.release || "nothing");
    text("weights", Object.keys(d.weights).map(function (r) { return r + " " + d.weights[r] + "%"; }).join(", ") || "-");
    var c = d.canary;
    $("canary").hidden = !c;
    live.setAttribute("data-release", d.release || "");
    if (c) {
      live.setAttribute("data-step", c.step.number);
      live.setAttribute("data-weight", c.weight);
      text("canary-release", c.release);
      text("canary-stable", c.stable);
      text("step", c.step.number + " of " + c.step.of + " (" + c.step.kind + ")");
      text("weight", c.weight);
      $("weight-bar").style.width = c.weight + "%";
      text("step-text", c.step.description + " — " + fmt(c.step.elapsed_s, 0) + "s in");
      text("next", c.next_step.text);
      text("decision", c.decision ? c.decision.action + ": " + c.decision.reason : (c.paused ? "paused: " + c.paused_because : "-"));
      var v = c.verdict, body = $("verdict").tBodies[0];
      body.textContent = "";
      text("verdict-outcome", v ? v.outcome : "not judged yet");
      text("verdict-window", v ? "window " + when(v.window[0]) + " – " + when(v.window[1]) + " (" + (v.window[1] - v.window[0]) + "s)" : "");
      (v ? v.checks : []).forEach(function (k) {
        body.appendChild(el("tr", { "data-check": k.name }, [
          el("td", {}, [k.name]), el("td", {}, [el("span", { "class": "pill " + k.outcome }, [k.outcome])]),
          el("td", {}, [value(k.name, k.canary)]), el("td", {}, [value(k.name, k.stable)]),
          el("td", {}, [k.p_value === null ? "-" : Number(k.p_value).toPrecision(3) + (k.method ? " (" + k.method + ")" : "")]),
          el("td", {}, [value(k.name, k.tolerance)]), el("td", {}, [(k.canary_n === undefined ? "-" : k.canary_n) + " / " + (k.stable_n === undefined ? "-" : k.stable_n)]),
          el("td", {}, [k.reason || ""])]));
      });
      var firing = $("firing");
      firing.textContent = "";
      c.firing.forEach(function (f) {
        firing.appendChild(el("p", { "class": "bad" }, ["firing: " + f.condition + " = " + JSON.stringify(f.value) + " over " + f.window + "s — " + f.reason]));
      });
      document.querySelectorAll("#canary-actions .canary-resume").forEach(function (b) { b.parentNode.hidden = !c.paused; });
      document.querySelectorAll("#canary-actions .canary-pause").forEach(function (b) { b.parentNode.hidden = c.paused; });
    } else {
      live.removeAttribute("data-step");
      live.setAttribute("data-weight", "");
    }
    var dep = d.deployment;
    $("deployment").hidden = !dep;
    if (dep) {
      text("dep-title", "#" + dep.id + ": " + dep.kind + " of " + dep.release + " (" + dep.strategy + ")");
      var ol = $("steps");
      ol.textContent = "";
      dep.steps.forEach(function (s) {
        ol.appendChild(el("li", { "data-status": s.status }, [el("span", { "class": "pill " + s.status }, [s.status]), " " + s.description]));
      });
    }
    $("waiting").hidden = d.waiting.length === 0;
    var wl = $("waiting-list");
    wl.textContent = "";
    d.waiting.forEach(function (w) {
      wl.appendChild(el("p", { "data-deployment": w.deployment }, [
        "#" + w.deployment + " " + w.release + " requested by " + w.requested_by + " — approvals " + w.approvals.length + " of " + w.required + " "]
        .concat(init.approve ? [form("approve", "Approve", { deployment: w.deployment }), " ", form("reject", "Reject", { deployment: w.deployment })] : [])));
    });
    $("watch").hidden = !d.watch;
    if (d.watch) text("watch-text", d.watch.state + ": " + d.watch.release + " (rollback to " + d.watch.previous + ") " + (d.watch.reason || ""));
    var l = d.last;
    text("last", l ? "last: " + l.kind + " of " + l.release + " " + l.outcome + (l.reason ? " (" + l.reason + ")" : "") : "no deployment yet");
    live.setAttribute("data-last-outcome", l ? l.outcome : "");
    var events = $("events").tBodies[0];
    events.textContent = "";
    (d.events || []).forEach(function (e) {
      events.appendChild(el("tr", { "data-kind": e.kind }, [el("td", {}, [when(e.at)]), el("td", {}, [e.kind]), el("td", {}, [e.message])]));
    });
  }

  render(init.first);
  var source = new EventSource("/events?env=" + encodeURIComponent(init.env));
  source.addEventListener("live", function (ev) {
    $("live").setAttribute("data-state", "live");
    text("conn", "live");
    render(JSON.parse(ev.data));
  });
  source.addEventListener("bye", function () { source.close(); text("conn", "session ended: reload"); });
  source.onerror = function () { $("live").setAttribute("data-state", "reconnecting"); text("conn", "reconnecting…"); };
})();
