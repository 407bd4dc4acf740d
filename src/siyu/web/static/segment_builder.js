// The segment builder: a rule as a tree of and/or groups (nested, each node negatable) and conditions
// (fields, custom attributes, tags, identities, consent, orders and events with windows, other
// segments), kept as the canonical JSON the API stores. While editing, a debounced call to
// /api/segments/sample shows the count, sample members and the text form; an error names its JSON
// path, and the node at that path is outlined. No build step: plain DOM.
(function () {
  "use strict";

  var DEBOUNCE_MS = 400;
  var data, labels, catalog, root, csrf, timer, seq = 0, lastGood = null;
  var elements = {}; // JSON path prefix -> DOM element, rebuilt with every serialisation

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") { node.textContent = attrs[key]; }
      else if (key.slice(0, 2) === "on") { node.addEventListener(key.slice(2), attrs[key]); }
      else { node.setAttribute(key, attrs[key]); }
    });
    (children || []).forEach(function (child) { if (child) { node.appendChild(child); } });
    return node;
  }

  function select(name, options, value, onchange) {
    var box = el("select", { "data-role": name, "aria-label": name, onchange: onchange });
    options.forEach(function (option) {
      var pair = Array.isArray(option) ? option : [option, option];
      var item = el("option", { value: pair[0], text: pair[1] });
      if (String(pair[0]) === String(value)) { item.selected = true; }
      box.appendChild(item);
    });
    return box;
  }

  function input(name, value, placeholder, oninput) {
    return el("input", { "data-role": name, value: value == null ? "" : value, placeholder: placeholder || "", "aria-label": placeholder || name, oninput: oninput });
  }

  // --- the model: {kind: "group", op, negated, children} | {kind: "cond", negated, node: <JSON>} -----

  function fromJSON(json) {
    var negated = false;
    while (json && json.type === "not") { negated = !negated; json = json.rule; }
    if (json && (json.type === "and" || json.type === "or")) {
      return { kind: "group", op: json.type, negated: negated, children: (json.rules || []).map(fromJSON) };
    }
    return { kind: "cond", negated: negated, node: JSON.parse(JSON.stringify(json)) };
  }

  function toJSON(model, path) {
    var json;
    var inner = model.negated ? path + ".rule" : path;
    if (model.kind === "group") {
      json = { type: model.op, rules: model.children.map(function (child, i) { return toJSON(child, inner + ".rules[" + i + "]"); }) };
    } else {
      json = model.node;
    }
    if (model.element) { elements[path] = model.element; elements[inner] = model.element; }
    return model.negated ? { type: "not", rule: json } : json;
  }

  function currentRule() {
    elements = {};
    return toJSON(root, "rule");
  }

  function fieldInfo(name) {
    for (var i = 0; i < catalog.fields.length; i++) { if (catalog.fields[i].name === name) { return catalog.fields[i]; } }
    return null;
  }

  function newCondition(type) {
    switch (type) {
      case "tag": return { type: "tag", tag: catalog.tags[0] || "" };
      case "has": return { type: "has", identity: catalog.identity_kinds[0] || "phone" };
      case "consent": return { type: "consent", channel: catalog.consent_channels[0] || "sms", purpose: "marketing" };
      case "orders": return { type: "orders", within: "30d", measure: "count", op: ">=", value: 1 };
      case "events": return { type: "events", event_type: "", within: "30d", measure: "count", op: ">=", value: 1 };
      case "segment": return { type: "segment", segment: catalog.segments[0] || "" };
      case "attr": return { type: "field", field: "attr.", op: "=", value: "" };
      default: return { type: "field", field: "order_count", op: ">=", value: 1 };
    }
  }

  // a value as typed, read for the field's kind: numbers, dates, ago("30d") as {"ago": "30d"}, lists, null
  function parseValue(text, kind, op) {
    var raw = String(text).trim();
    if (op === "in") {
      return raw.split(/[,，]/).map(function (part) { return parseValue(part, kind, "="); }).filter(function (v) { return v !== ""; });
    }
    if (raw === "null") { return null; }
    if (kind === "time") {
      var ago = /^ago\(\s*"?(\d+[hdw])"?\s*\)$/.exec(raw) || /^(\d+[hdw])$/.exec(raw);
      if (ago) { return { ago: ago[1] }; }
      return raw;
    }
    if (kind === "count" || kind === "money" || kind === "score" || kind === "attribute") {
      if (raw !== "" && !isNaN(Number(raw))) { return Number(raw); }
      if (kind === "attribute" && (raw === "true" || raw === "false")) { return raw === "true"; }
      if (kind === "attribute") { return raw.replace(/^"(.*)"$/, "$1"); }
      return raw;
    }
    return raw;
  }

  function showValue(value) {
    if (value == null) { return "null"; }
    if (Array.isArray(value)) { return value.map(showValue).join(", "); }
    if (typeof value === "object" && value.ago) { return value.ago; }
    return String(value);
  }

  // --- rendering ----------------------------------------------------------------------------------

  function negateBox(model) {
    var box = el("input", { type: "checkbox", "data-role": "not", onchange: function () { model.negated = box.checked; changed(); } });
    box.checked = !!model.negated;
    return el("label", { "class": "inline-label" }, [box, document.createTextNode(labels.not)]);
  }

  function renderGroup(model, parent) {
    var children = el("div", { "class": "rule-children" });
    model.children.forEach(function (child) { children.appendChild(render(child, model)); });
    var head = el("div", { "class": "rule-head" }, [
      negateBox(model),
      select("group-op", [["and", labels.all_of], ["or", labels.any_of]], model.op, function (e) { model.op = e.target.value; changed(); }),
      el("button", { type: "button", "data-role": "add-condition", text: labels.add_condition, onclick: function () {
        model.children.push({ kind: "cond", negated: false, node: newCondition("field") }); redraw();
      } }),
      el("button", { type: "button", "data-role": "add-group", text: labels.add_group, onclick: function () {
        model.children.push({ kind: "group", op: "or", negated: false, children: [] }); redraw();
      } }),
      parent ? el("button", { type: "button", "class": "link", "data-role": "remove", text: labels.remove, onclick: function () {
        parent.children.splice(parent.children.indexOf(model), 1); redraw();
      } }) : null
    ]);
    var box = el("div", { "class": "rule-group", "data-kind": "group" }, [head, children]);
    model.element = box;
    return box;
  }

  function typeOf(node) {
    if (node.type === "field" && String(node.field).indexOf("attr.") === 0) { return "attr"; }
    return node.type;
  }

  function renderCondition(model, parent) {
    var node = model.node;
    var type = typeOf(node);
    var types = ["field", "attr", "tag", "has", "consent", "orders", "events", "segment"].map(function (t) { return [t, labels["cond." + t]]; });
    var parts = [
      negateBox(model),
      select("cond-type", types, type, function (e) { model.node = newCondition(e.target.value); redraw(); })
    ];
    var set = function (key, convert) {
      return function (e) { node[key] = convert ? convert(e.target.value) : e.target.value; changed(); };
    };
    var optional = function (key) { return function (e) { if (e.target.value.trim()) { node[key] = e.target.value.trim(); } else { delete node[key]; } changed(); }; };
    if (type === "field") {
      var info = fieldInfo(node.field) || catalog.fields[0];
      parts.push(select("field", catalog.fields.map(function (f) { return f.name; }), node.field, function (e) {
        node.field = e.target.value; var f = fieldInfo(node.field); node.op = f.ops[0]; redraw();
      }));
      parts.push(select("op", info.ops, node.op, function (e) { node.op = e.target.value; node.value = parseValue(valueBox.value, info.kind, node.op); changed(); }));
      var valueBox = input("value", showValue(node.value), labels.value, function (e) { node.value = parseValue(e.target.value, info.kind, node.op); changed(); });
      valueBox.title = labels.value_hint;
      if (info.choices.length) {
        var listId = "choices-" + info.name.replace(/\W/g, "-");
        valueBox.setAttribute("list", listId);
        parts.push(el("datalist", { id: listId }, info.choices.map(function (c) { return el("option", { value: c }); })));
      }
      parts.push(valueBox);
    } else if (type === "attr") {
      parts.push(input("attr", String(node.field).slice(5), "attr.", function (e) { node.field = "attr." + e.target.value.trim(); changed(); }));
      parts.push(select("op", catalog.attribute_ops, node.op, function (e) { node.op = e.target.value; changed(); }));
      parts.push(input("value", showValue(node.value), labels.value, function (e) { node.value = parseValue(e.target.value, "attribute", node.op); changed(); }));
    } else if (type === "tag") {
      parts.push(select("tag", catalog.tags, node.tag, set("tag")));
    } else if (type === "has") {
      parts.push(select("identity", catalog.identity_kinds, node.identity, set("identity")));
    } else if (type === "consent") {
      parts.push(select("channel", catalog.consent_channels, node.channel, set("channel")));
      parts.push(select("purpose", catalog.consent_purposes, node.purpose || "marketing", set("purpose")));
    } else if (type === "orders" || type === "events") {
      var filters = type === "orders" ? catalog.orders.filters : catalog.events.filters;
      filters.forEach(function (key) { parts.push(input(key, node[key], labels[key] || key, optional(key))); });
      var measures = (type === "orders" ? catalog.orders.measures : catalog.events.measures).map(function (m) { return [m, labels["measure." + m] || m]; });
      parts.push(select("measure", measures, node.measure, set("measure")));
      parts.push(select("op", catalog.measure_ops, node.op, set("op")));
      parts.push(input("value", showValue(node.value), labels.value, set("value", function (v) { return v.trim() !== "" && !isNaN(Number(v)) ? Number(v) : v; })));
    } else if (type === "segment") {
      parts.push(select("segment", catalog.segments, node.segment, set("segment")));
    }
    parts.push(el("button", { type: "button", "class": "link", "data-role": "remove", text: labels.remove, onclick: function () {
      parent.children.splice(parent.children.indexOf(model), 1); redraw();
    } }));
    var box = el("div", { "class": "rule-cond", "data-kind": "condition", "data-type": type }, parts);
    model.element = box;
    return box;
  }

  function render(model, parent) {
    return model.kind === "group" ? renderGroup(model, parent) : renderCondition(model, parent);
  }

  function redraw() {
    var holder = document.getElementById("builder");
    holder.innerHTML = "";
    holder.appendChild(render(root, null));
    changed();
  }

  // --- live count, sample, text form, errors ------------------------------------------------------

  function showError(problem) {
    var box = document.getElementById("builder-error");
    document.querySelectorAll(".has-error").forEach(function (n) { n.classList.remove("has-error"); });
    if (!problem) { box.hidden = true; box.textContent = ""; return; }
    var text = problem.message || problem.error || "error";
    if (problem.where) { text += " (" + problem.where + ")"; }
    if (problem.hint) { text += " — " + problem.hint; }
    box.textContent = text;
    box.hidden = false;
    var path = problem.details && problem.details.path;
    if (path) {
      var best = null;
      Object.keys(elements).forEach(function (key) {
        if ((path === key || path.indexOf(key + ".") === 0 || path.indexOf(key + "[") === 0) && (!best || key.length > best.length)) { best = key; }
      });
      if (best) { elements[best].classList.add("has-error"); }
    }
  }

  function problemOf(body) {
    if (body && body.message) { return body; }
    if (body && Array.isArray(body.detail)) {
      return { message: body.detail.map(function (d) { return d.msg; }).join("; "), where: body.detail.map(function (d) { return (d.loc || []).join("."); }).join("; ") };
    }
    return { message: String(body) };
  }

  function request(method, url, body) {
    var options = { method: method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRF-Token"] = csrf;
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) { return { ok: response.ok, body: json }; });
    });
  }

  function refresh() {
    var rule = currentRule();
    document.getElementById("rule-json").textContent = JSON.stringify(rule, null, 2);
    var mine = ++seq;
    document.getElementById("live-count").textContent = labels.counting;
    request("GET", "/api/segments/sample?limit=10&rule=" + encodeURIComponent(JSON.stringify(rule))).then(function (answer) {
      if (mine !== seq) { return; } // a later edit has its own call
      var count = document.getElementById("live-count");
      if (!answer.ok) { count.textContent = "—"; count.dataset.count = ""; showError(problemOf(answer.body)); return; }
      showError(null);
      lastGood = answer.body;
      count.textContent = answer.body.count.toLocaleString();
      count.dataset.count = String(answer.body.count);
      document.getElementById("rule-text").value = answer.body.text;
      var warnings = document.getElementById("live-warnings");
      warnings.innerHTML = "";
      answer.body.warnings.forEach(function (w) { warnings.appendChild(el("li", { text: w })); });
      var sample = document.getElementById("sample-members");
      sample.innerHTML = "";
      answer.body.members.forEach(function (m) {
        sample.appendChild(el("li", {}, [el("a", { href: "/customers/" + m.id, text: (m.name || "#" + m.id) + (m.phone ? " · " + m.phone : "") })]));
      });
    });
  }

  function changed() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, DEBOUNCE_MS);
  }

  function readText() {
    var text = document.getElementById("rule-text").value;
    request("GET", "/api/segments/explain?text=" + encodeURIComponent(text)).then(function (answer) {
      if (!answer.ok) { showError(problemOf(answer.body)); return; }
      root = fromJSON(answer.body.rule);
      if (root.kind !== "group") { root = { kind: "group", op: "and", negated: false, children: [root] }; }
      redraw();
    });
  }

  function save() {
    var name = document.getElementById("segment-name").value;
    var body = { name: name, rule: currentRule(), accept_warnings: document.getElementById("accept-warnings").checked };
    var call = data.segment_id
      ? request("PATCH", "/api/segments/" + data.segment_id, body)
      : request("POST", "/api/segments", body);
    call.then(function (answer) {
      if (!answer.ok) { showError(problemOf(answer.body)); return; }
      window.location.assign("/segments/" + answer.body.id + "?saved=1");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var source = document.getElementById("builder-data");
    if (!source) { return; }
    data = JSON.parse(source.textContent);
    labels = JSON.parse(document.getElementById("builder-labels").textContent);
    catalog = data.catalog;
    csrf = document.getElementById("builder").dataset.csrf;
    root = fromJSON(data.rule);
    if (root.kind !== "group") { root = { kind: "group", op: "and", negated: false, children: [root] }; }
    document.getElementById("save-segment").addEventListener("click", save);
    document.getElementById("read-text").addEventListener("click", readText);
    redraw();
    window.segmentBuilder = { rule: currentRule, last: function () { return lastGood; } };
  });
})();
