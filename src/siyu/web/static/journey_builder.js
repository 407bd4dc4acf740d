// The journey (SOP) builder: a definition as its trigger, re-entry rule, goal and a sequence of steps,
// where a condition, an A/B split or a wait for an event holds one sequence per branch and the flow
// joins again after it. It writes the canonical JSON the API stores into the advanced view's textarea
// (which the form sends) and reads that JSON back when it is edited by hand; a definition whose jumps
// form no such nesting stays editable as JSON only. An error of a refused save is shown at its step.
// No build step: plain DOM.
(function () {
  "use strict";

  var END = null;
  var BRANCHING = { condition: true, split: true, wait_event: true };
  var data, labels, catalog, state = null, textarea, typingTimer, errorAt = null;
  var cards = {}; // step id -> its card, rebuilt with every drawing

  // --- small DOM helpers --------------------------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === undefined || value === null || value === false) { return; }
      if (key === "text") { node.textContent = value; }
      else if (key.slice(0, 2) === "on") { node.addEventListener(key.slice(2), value); }
      else { node.setAttribute(key, value === true ? "" : value); }
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) { return; }
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function L(key, values) {
    var text = labels[key] || key;
    Object.keys(values || {}).forEach(function (name) { text = text.replace("{" + name + "}", values[name]); });
    return text;
  }

  function field(name, caption, control) {
    return el("label", { "class": "jb-field", "data-field": name }, [el("span", { text: caption }), control]);
  }

  function choose(role, options, value, onchange, empty) {
    var box = el("select", { "data-role": role, "aria-label": role });
    if (empty !== undefined) { box.appendChild(el("option", { value: "", text: empty })); }
    options.forEach(function (option) {
      var item = el("option", { value: String(option[0]), text: option[1] });
      if (value !== undefined && value !== null && String(option[0]) === String(value)) { item.selected = true; }
      box.appendChild(item);
    });
    box.addEventListener("change", function () { onchange(box.value); });
    return box;
  }

  function text(role, value, onchange, attrs) {
    var box = el("input", Object.assign({ "data-role": role, "aria-label": role, value: value === undefined || value === null ? "" : String(value) }, attrs || {}));
    box.addEventListener("input", function () { onchange(box.value); });
    return box;
  }

  function number(role, value, onchange) {
    return text(role, value, function (raw) { onchange(raw.trim() === "" || isNaN(Number(raw)) ? undefined : Number(raw)); }, { type: "number", min: "0", step: "any" });
  }

  function check(role, checked, onchange) {
    var box = el("input", { type: "checkbox", "data-role": role, "aria-label": role });
    box.checked = !!checked;
    box.addEventListener("change", function () { onchange(box.checked); });
    return box;
  }

  function setOrDrop(object, key, value) {
    if (value === undefined || value === "" || value === null) { delete object[key]; } else { object[key] = value; }
  }

  function ids(list) { return list.map(function (item) { return [item.id, item.name]; }); }
  function clone(value) { return JSON.parse(JSON.stringify(value)); }

  // --- from the canonical JSON to the nested model, and back ---------------------------------------
  // state = {trigger, reentry, goal, extra, steps: [node]}; node = {step, branches: [{key, seq: [node]}]}

  var FLOW_KEYS = ["next", "then", "else", "timeout_next", "branches", "holdout"];

  function unstructured(reason) { var error = new Error(reason); error.unstructured = true; return error; }

  function waysOut(step, next) {
    switch (step.kind) {
      case "exit": return [];
      case "condition": return [{ key: "then", target: step.then || END }, { key: "else", target: step["else"] || END }];
      case "wait_event": return [{ key: "event", target: next }, { key: "timeout", target: step.timeout_next || END }];
      case "split":
        return Object.keys(step.branches || {}).map(function (name) { return { key: "v:" + name, target: step.branches[name] || END }; })
          .concat([{ key: "holdout", target: step.holdout || END }]);
      default: return [{ key: "", target: next }];
    }
  }

  function graphOf(steps) {
    var byId = {}, ways = {};
    steps.forEach(function (step) { byId[step.id] = step; });
    steps.forEach(function (step, position) {
      var next = Object.prototype.hasOwnProperty.call(step, "next") ? (step.next || END)
        : (position + 1 < steps.length ? steps[position + 1].id : END);
      ways[step.id] = waysOut(step, next);
      ways[step.id].forEach(function (way) {
        if (way.target !== END && !byId[way.target]) { throw unstructured(step.id + " → " + way.target); }
      });
    });
    return { byId: byId, ways: ways };
  }

  function fromDefinition(document) {
    if (!document || typeof document !== "object" || Array.isArray(document)) { throw unstructured("{…}"); }
    var steps = Array.isArray(document.steps) ? document.steps : [];
    steps.forEach(function (step) {
      if (!step || typeof step !== "object" || typeof step.id !== "string" || !step.id) { throw unstructured("id"); }
    });
    var graph = graphOf(steps);
    // post-dominators over the steps (no cycles: the server refuses them, and so does this walk)
    var postdom = {}, visiting = {};
    function visit(id) {
      if (postdom[id]) { return postdom[id]; }
      if (visiting[id]) { throw unstructured(id + " ↺"); }
      visiting[id] = true;
      var common = null;
      graph.ways[id].forEach(function (way) {
        var below = way.target === END ? {} : visit(way.target);
        if (common === null) { common = Object.assign({}, below); }
        else { Object.keys(common).forEach(function (key) { if (!below[key]) { delete common[key]; } }); }
      });
      common = common || {};
      common[id] = true;
      postdom[id] = common;
      return common;
    }
    steps.forEach(function (step) { visit(step.id); });
    function joinOf(id) { // the nearest step every way out of `id` passes through (END: none)
      var best = END, size = -1;
      Object.keys(postdom[id]).forEach(function (key) {
        var n = Object.keys(postdom[key]).length;
        if (key !== id && n > size) { best = key; size = n; }
      });
      return best;
    }
    var seen = {};
    function sequence(start, stop) {
      var seq = [], current = start;
      while (current !== stop && current !== END) {
        if (seen[current]) { throw unstructured(current); }
        seen[current] = true;
        var step = graph.byId[current], node = { step: {} };
        Object.keys(step).forEach(function (key) { if (FLOW_KEYS.indexOf(key) < 0) { node.step[key] = clone(step[key]); } });
        var ways = graph.ways[current];
        seq.push(node);
        if (BRANCHING[step.kind]) {
          var join = joinOf(current);
          node.branches = ways.map(function (way) { return { key: way.key, seq: sequence(way.target, join) }; });
          current = join;
        } else {
          current = ways.length ? ways[0].target : END;
        }
      }
      if (current !== stop) { throw unstructured(String(stop)); }
      return seq;
    }
    var model = {
      trigger: clone(document.trigger || { kind: "event", type: "order.placed" }),
      reentry: clone(document.reentry || { mode: "never" }),
      goal: document.goal ? clone(document.goal) : null,
      extra: {},
      steps: steps.length ? sequence(steps[0].id, END) : []
    };
    Object.keys(document).forEach(function (key) {
      if (["trigger", "reentry", "goal", "steps"].indexOf(key) < 0) { model.extra[key] = clone(document[key]); }
    });
    steps.forEach(function (step) { if (!seen[step.id]) { throw unstructured(step.id); } });
    // the nesting must say exactly what the JSON said: the same ways out of every step
    var again = graphOf(toDefinition(model).steps);
    steps.forEach(function (step) {
      if (JSON.stringify(again.ways[step.id]) !== JSON.stringify(graph.ways[step.id])) { throw unstructured(step.id); }
    });
    return model;
  }

  function toDefinition(model) {
    var out = [];
    function flatten(seq, after) {
      seq.forEach(function (node, i) {
        var following = i + 1 < seq.length ? seq[i + 1].step.id : after;
        var entry = { step: clone(node.step), want: undefined };
        out.push(entry);
        if (node.branches) {
          var firsts = node.branches.map(function (branch) { return branch.seq.length ? branch.seq[0].step.id : following; });
          var step = entry.step;
          if (step.kind === "condition") {
            setOrDrop(step, "then", firsts[0]);
            setOrDrop(step, "else", firsts[1]);
          } else if (step.kind === "wait_event") {
            entry.want = firsts[0];
            setOrDrop(step, "timeout_next", firsts[1]);
          } else {
            step.branches = {};
            node.branches.forEach(function (branch, b) {
              if (branch.key.indexOf("v:") === 0 && firsts[b]) { step.branches[branch.key.slice(2)] = firsts[b]; }
              if (branch.key === "holdout") { setOrDrop(step, "holdout", firsts[b]); }
            });
          }
          node.branches.forEach(function (branch) { flatten(branch.seq, following); });
        } else if (node.step.kind !== "exit") {
          entry.want = following;
        }
      });
    }
    flatten(model.steps, END);
    var steps = out.map(function (entry, k) {
      var listed = k + 1 < out.length ? out[k + 1].step.id : END;
      if (entry.want !== undefined && entry.want !== listed) { entry.step.next = entry.want; }
      return entry.step;
    });
    var document = { trigger: model.trigger, reentry: model.reentry };
    if (model.goal) { document.goal = model.goal; }
    document.steps = steps;
    return Object.assign(document, model.extra);
  }

  // --- defaults -----------------------------------------------------------------------------------

  function first(list) { return list.length ? list[0].id : null; }

  function newTrigger(kind) {
    switch (kind) {
      case "segment_entered": case "segment_left": return { kind: kind, segment_id: first(catalog.segments) };
      case "coupon_expiring": return { kind: kind, days_before: 3 };
      case "date": return { kind: kind, attribute: catalog.date_attributes[0], days_before: 0, at: "10:00" };
      case "schedule": return { kind: kind, every: "day", at: "10:00", segment_id: first(catalog.segments) };
      default: return { kind: "event", type: "order.placed" };
    }
  }

  function allIds(seq, found) {
    found = found || {};
    seq.forEach(function (node) {
      found[node.step.id] = true;
      (node.branches || []).forEach(function (branch) { allIds(branch.seq, found); });
    });
    return found;
  }

  function freshId(kind) {
    var taken = allIds(state.steps), n = 1;
    while (taken[kind + "_" + n]) { n += 1; }
    return kind + "_" + n;
  }

  function experimentOf(id) {
    for (var i = 0; i < catalog.experiments.length; i++) { if (String(catalog.experiments[i].id) === String(id)) { return catalog.experiments[i]; } }
    return null;
  }

  function splitBranches(experiment, old) {
    var kept = {};
    (old || []).forEach(function (branch) { kept[branch.key] = branch.seq; });
    var keys = (experiment ? experiment.variants : []).map(function (name) { return "v:" + name; }).concat(["holdout"]);
    return keys.map(function (key) { return { key: key, seq: kept[key] || [] }; });
  }

  function newNode(kind) {
    var step = { id: freshId(kind), kind: kind };
    var node = { step: step };
    switch (kind) {
      case "send":
        step.channels = catalog.channels.slice(0, 2);
        step.content = {};
        step.channels.forEach(function (channel) { step.content[channel] = { text: "" }; });
        break;
      case "wait": step.days = 1; break;
      case "wait_until": step.time = "10:00"; break;
      case "wait_event": step.event = "order.placed"; step.timeout_hours = 72; break;
      case "condition": step.rule = ""; break;
      case "split": step.experiment_id = first(catalog.experiments); break;
      case "tag": step.tag_id = first(catalog.tags); step.action = "add"; break;
      case "task": step.title = ""; step.due_hours = 24; break;
      case "coupon": step.template_id = first(catalog.coupon_templates); break;
    }
    if (kind === "condition") { node.branches = [{ key: "then", seq: [] }, { key: "else", seq: [] }]; }
    if (kind === "wait_event") { node.branches = [{ key: "event", seq: [] }, { key: "timeout", seq: [] }]; }
    if (kind === "split") { node.branches = splitBranches(experimentOf(step.experiment_id), []); }
    return node;
  }

  // --- drawing ------------------------------------------------------------------------------------

  function orNone(options) { return options.length ? options : [["", L("none_yet")]]; }

  function eventChoices() { return catalog.event_types.map(function (type) { return [type, type]; }); }

  function triggerFields(trigger) {
    var parts = [];
    var kind = trigger.kind;
    if (kind === "segment_entered" || kind === "segment_left" || kind === "schedule") {
      parts.push(field("segment_id", L("segment"), choose("segment", orNone(ids(catalog.segments)), trigger.segment_id, function (v) { trigger.segment_id = v ? Number(v) : null; changed(); })));
    }
    if (kind === "event") {
      parts.push(field("type", L("event_type"), choose("event-type", eventChoices(), trigger.type, function (v) {
        trigger.type = v; delete trigger.live_code_id; delete trigger.stage; draw();
      })));
      if (trigger.type === "wecom.friend_added" || trigger.type === "livecode.added") {
        parts.push(field("live_code_id", L("live_code"), choose("live-code", ids(catalog.live_codes), trigger.live_code_id, function (v) { setOrDrop(trigger, "live_code_id", v ? Number(v) : null); changed(); }, L("any"))));
      }
      if (trigger.type === "lifecycle.changed") {
        parts.push(field("stage", L("stage"), choose("stage", catalog.stages.map(function (s) { return [s, s]; }), trigger.stage, function (v) { setOrDrop(trigger, "stage", v); changed(); }, L("any"))));
      }
    }
    if (kind === "coupon_expiring") {
      parts.push(field("template_id", L("coupon_template"), choose("coupon-template", ids(catalog.coupon_templates), trigger.template_id, function (v) { setOrDrop(trigger, "template_id", v ? Number(v) : null); changed(); }, L("any"))));
    }
    if (kind === "date") {
      parts.push(field("attribute", L("attribute"), choose("attribute", catalog.date_attributes.map(function (a) { return [a, L("attribute_" + a)]; }), trigger.attribute, function (v) { trigger.attribute = v; changed(); })));
    }
    if (kind === "coupon_expiring" || kind === "date") {
      parts.push(field("days_before", L("days_before"), number("days-before", trigger.days_before, function (v) { setOrDrop(trigger, "days_before", v); changed(); })));
    }
    if (kind === "date" || kind === "schedule") {
      parts.push(field("at", L("at"), text("at", trigger.at, function (v) { trigger.at = v; changed(); }, { type: "time" })));
    }
    if (kind === "schedule") {
      parts.push(field("every", L("every"), choose("every", [["day", L("every_day")], ["week", L("every_week")]], trigger.every, function (v) {
        trigger.every = v; if (v === "week") { trigger.weekday = trigger.weekday || 1; } else { delete trigger.weekday; } draw();
      })));
      if (trigger.every === "week") {
        parts.push(field("weekday", L("weekday"), choose("weekday", [1, 2, 3, 4, 5, 6, 7].map(function (d) { return [d, L("weekday_" + d)]; }), trigger.weekday, function (v) { trigger.weekday = Number(v); changed(); })));
      }
    }
    return parts;
  }

  function drawHead() {
    var trigger = state.trigger;
    var kinds = catalog.trigger_kinds.map(function (kind) { return [kind, L("trigger." + kind)]; });
    var triggerBox = el("fieldset", { "class": "jb-section", id: "jb-trigger", "data-section": "trigger" }, [
      el("legend", { text: L("trigger") }),
      el("div", { "class": "jb-row" }, [field("kind", L("trigger"), choose("trigger-kind", kinds, trigger.kind, function (v) { state.trigger = newTrigger(v); draw(); }))].concat(triggerFields(trigger)))
    ]);
    var reentry = state.reentry;
    var modes = catalog.reentry_modes.map(function (mode) { return [mode, L("reentry_" + mode)]; });
    var reentryRow = [field("mode", L("reentry"), choose("reentry-mode", modes, reentry.mode, function (v) {
      state.reentry = v === "after_days" ? { mode: v, days: reentry.days || 30 } : { mode: v }; draw();
    }))];
    if (reentry.mode === "after_days") {
      reentryRow.push(field("days", L("days"), number("reentry-days", reentry.days, function (v) { setOrDrop(reentry, "days", v); changed(); })));
    }
    var goalRow = [field("event", L("goal"), choose("goal-event", eventChoices(), state.goal ? state.goal.event : "", function (v) {
      state.goal = v ? Object.assign(state.goal || {}, { event: v }) : null; changed();
    }, L("no_goal")))];
    return [
      triggerBox,
      el("fieldset", { "class": "jb-section", id: "jb-reentry", "data-section": "reentry" }, [el("legend", { text: L("reentry") }), el("div", { "class": "jb-row" }, reentryRow)]),
      el("fieldset", { "class": "jb-section", id: "jb-goal", "data-section": "goal" }, [el("legend", { text: L("goal") }), el("div", { "class": "jb-row" }, goalRow)])
    ];
  }

  function sendFields(step) {
    var parts = [];
    step.content = step.content && typeof step.content === "object" ? step.content : {};
    var channels = Array.isArray(step.channels) ? step.channels : (step.channels = []);
    var boxes = catalog.channels.map(function (channel) {
      var rank = channels.indexOf(channel);
      return el("label", { "class": "inline-label" }, [
        check("channel-" + channel, rank >= 0, function (on) {
          if (on) { channels.push(channel); step.content[channel] = step.content[channel] || { text: "" }; }
          else {
            channels.splice(channels.indexOf(channel), 1);
            var variant = step.content[channel];
            if (variant && Object.keys(variant).length === 1 && !variant.text) { delete step.content[channel]; }
          }
          draw();
        }),
        channel + (rank >= 0 ? " (" + (rank + 1) + ")" : "")
      ]);
    });
    parts.push(el("div", { "class": "jb-field jb-wide", "data-field": "channels" }, [el("span", { text: L("channels") })].concat(boxes)));
    parts.push(field("purpose", L("purpose"), choose("purpose", [["marketing", L("purpose_marketing")], ["transactional", L("purpose_transactional")]], step.purpose || "marketing", function (v) {
      if (v === "marketing") { delete step.purpose; } else { step.purpose = v; } changed();
    })));
    if (catalog.message_templates.length) {
      parts.push(field("template", L("from_template"), choose("message-template", ids(catalog.message_templates), "", function (v) {
        var found = catalog.message_templates.filter(function (t) { return String(t.id) === v; })[0];
        if (!found) { return; }
        step.content = clone(found.variants);
        var usable = Object.keys(step.content).filter(function (c) { return catalog.channels.indexOf(c) >= 0; });
        if (usable.length) { step.channels = usable; }
        draw();
      }, "—")));
    }
    var texts = channels.map(function (channel) {
      var variant = step.content[channel] = step.content[channel] || { text: "" };
      var area = el("textarea", { rows: "2", "data-role": "text-" + channel, "aria-label": L("text_for", { channel: channel }) });
      area.value = variant.text || "";
      area.addEventListener("input", function () { variant.text = area.value; changed(); });
      return field("content", L("text_for", { channel: channel }), area);
    });
    return parts.concat([el("div", { "class": "jb-texts" }, texts)]);
  }

  function stepFields(node) {
    var step = node.step;
    var set = function (key) { return function (v) { setOrDrop(step, key, v); changed(); }; };
    switch (step.kind) {
      case "send": return sendFields(step);
      case "wait":
        var cycle = step.days_from === "repurchase_cycle";
        var parts = [
          field("days", cycle ? L("fallback_days") : L("days"), number("days", step.days, set("days"))),
          cycle ? field("days_before", L("days_before"), number("days-before", step.days_before, set("days_before"))) : null,
          cycle ? null : field("hours", L("hours"), number("hours", step.hours, set("hours"))),
          cycle ? null : field("minutes", L("minutes"), number("minutes", step.minutes, set("minutes"))),
          el("label", { "class": "inline-label", "data-field": "days_from" }, [check("repurchase-cycle", cycle, function (on) {
            if (on) { step.days_from = "repurchase_cycle"; delete step.hours; delete step.minutes; } else { delete step.days_from; delete step.days_before; }
            draw();
          }), L("repurchase_cycle")])
        ];
        return parts;
      case "wait_until":
        var days = Array.isArray(step.weekdays) ? step.weekdays : [];
        return [
          field("time", L("time"), text("time", step.time, set("time"), { type: "time" })),
          el("div", { "class": "jb-field jb-wide", "data-field": "weekdays" }, [el("span", { text: L("weekdays") })].concat([1, 2, 3, 4, 5, 6, 7].map(function (d) {
            return el("label", { "class": "inline-label" }, [check("weekday-" + d, days.indexOf(d) >= 0, function (on) {
              var chosen = days.filter(function (x) { return x !== d; });
              if (on) { chosen.push(d); chosen.sort(); }
              setOrDrop(step, "weekdays", chosen.length ? chosen : null); draw();
            }), L("weekday_" + d)]);
          })))
        ];
      case "wait_event":
        return [
          field("event", L("event"), choose("event", eventChoices(), step.event, set("event"))),
          field("timeout_hours", L("timeout_hours"), number("timeout-hours", step.timeout_hours, set("timeout_hours")))
        ];
      case "condition":
        var shown = typeof step.rule === "string" ? step.rule : JSON.stringify(step.rule);
        var ruleBox = text("rule", shown, function (v) {
          var raw = v.trim();
          if (raw.charAt(0) === "{") { try { step.rule = JSON.parse(raw); } catch (e) { step.rule = v; } } else { step.rule = v; }
          changed();
        }, { "class": "mono jb-rule" });
        return [
          field("rule", L("rule"), ruleBox),
          field("segment", L("rule_help"), choose("rule-segment", ids(catalog.segments), "", function (v) {
            var found = catalog.segments.filter(function (s) { return String(s.id) === v; })[0];
            if (found) { step.rule = "segment(" + JSON.stringify(found.name) + ")"; draw(); }
          }, "—"))
        ];
      case "split":
        return [field("experiment_id", L("experiment"), choose("experiment", orNone(ids(catalog.experiments)), step.experiment_id, function (v) {
          step.experiment_id = v ? Number(v) : null;
          node.branches = splitBranches(experimentOf(step.experiment_id), node.branches);
          draw();
        }))];
      case "tag":
        return [
          field("tag_id", L("tag"), choose("tag", orNone(ids(catalog.tags)), step.tag_id, function (v) { step.tag_id = v ? Number(v) : null; changed(); })),
          field("action", L("action"), choose("action", [["add", L("action_add")], ["remove", L("action_remove")]], step.action || "add", set("action")))
        ];
      case "task":
        return [
          field("title", L("title"), text("title", step.title, set("title"), { maxlength: "200", "class": "jb-title" })),
          field("due_hours", L("due_hours"), number("due-hours", step.due_hours, set("due_hours"))),
          field("note", L("note"), text("note", step.note, set("note")))
        ];
      case "coupon":
        return [field("template_id", L("coupon_template"), choose("coupon-template", orNone(ids(catalog.coupon_templates)), step.template_id, function (v) { step.template_id = v ? Number(v) : null; changed(); }))];
      default: return [];
    }
  }

  function branchTitle(key) {
    if (key.indexOf("v:") === 0) { return L("branch_variant", { name: key.slice(2) }); }
    return L("branch_" + key);
  }

  function drawCard(node, seq) {
    var step = node.step;
    var position = seq.indexOf(node);
    var idBox = text("step-id", step.id, function (v) { step.id = v.trim(); changed(); }, { "class": "jb-id", maxlength: "64" });
    idBox.addEventListener("change", function () { draw(); }); // branches name their targets by id
    var head = el("div", { "class": "jb-card-head" }, [
      el("strong", { "class": "jb-kind", text: L("step." + step.kind) }),
      el("label", { "class": "inline-label", "data-field": "id" }, [L("step_id"), idBox]),
      el("span", { "class": "jb-tools" }, [
        el("button", { type: "button", "class": "link", "data-role": "up", title: L("up"), text: "↑", disabled: position === 0, onclick: function () { seq.splice(position, 1); seq.splice(position - 1, 0, node); draw(); } }),
        el("button", { type: "button", "class": "link", "data-role": "down", title: L("down"), text: "↓", disabled: position === seq.length - 1, onclick: function () { seq.splice(position, 1); seq.splice(position + 1, 0, node); draw(); } }),
        el("button", { type: "button", "class": "link", "data-role": "remove", text: L("remove"), onclick: function () { seq.splice(position, 1); draw(); } })
      ])
    ]);
    var card = el("div", { "class": "jb-card", "data-step-id": step.id, "data-kind": step.kind }, [head, el("div", { "class": "jb-row" }, stepFields(node))]);
    if (node.branches) {
      card.appendChild(el("div", { "class": "jb-branches" }, node.branches.map(function (branch) {
        return el("div", { "class": "jb-branch", "data-branch": branch.key }, [
          el("div", { "class": "jb-branch-title", text: branchTitle(branch.key) }),
          drawSequence(branch.seq)
        ]);
      })));
    }
    cards[step.id] = card;
    return card;
  }

  function adder(seq) {
    var kinds = catalog.step_kinds.map(function (kind) { return [kind, L("step." + kind)]; });
    var kind = choose("new-step-kind", kinds, "send", function () {});
    return el("div", { "class": "jb-add" }, [kind, el("button", { type: "button", "data-role": "add-step", text: L("add_step"), onclick: function () {
      seq.push(newNode(kind.value)); draw();
    } })]);
  }

  function drawSequence(seq) {
    var box = el("div", { "class": "jb-seq" });
    if (!seq.length) { box.appendChild(el("p", { "class": "muted small", text: L("branch_empty") })); }
    seq.forEach(function (node) { box.appendChild(drawCard(node, seq)); });
    box.appendChild(adder(seq));
    return box;
  }

  function placeError() {
    var place = data.error_at, problem = data.error;
    if (!place || !problem || !errorAt) { return; }
    var target = null;
    if (place.section === "step") {
      target = cards[place.step_id] || null;
      if (!target && place.index !== undefined) {
        var listed = toDefinition(state).steps[place.index];
        target = listed ? cards[listed.id] : null;
      }
    } else {
      target = document.getElementById("jb-" + place.section);
    }
    if (!target) { return; }
    target.classList.add("has-error");
    var message = problem.message + (problem.hint ? " — " + problem.hint : "");
    var note = el("div", { "class": "jb-error", role: "alert", text: message });
    var head = target.querySelector(".jb-card-head, legend");
    if (head && head.nextSibling) { target.insertBefore(note, head.nextSibling); } else { target.appendChild(note); }
    if (place.field) {
      var spot = target.querySelector("[data-field='" + place.field + "']");
      if (spot) { spot.classList.add("has-error"); }
    }
  }

  function draw() {
    var holder = document.getElementById("journey-builder");
    holder.innerHTML = "";
    cards = {};
    if (!state) {
      holder.appendChild(el("p", { "class": "alert", id: "jb-fallback", text: L("unstructured", { reason: fallbackReason }) }));
      document.getElementById("advanced").open = true;
      return;
    }
    drawHead().forEach(function (part) { holder.appendChild(part); });
    holder.appendChild(el("fieldset", { "class": "jb-section jb-steps", id: "jb-steps" }, [
      el("legend", { text: L("steps") }),
      drawSequence(state.steps),
      el("div", { "class": "jb-end muted small", text: "◼ " + L("end") })
    ]));
    placeError();
    changed();
  }

  // --- keeping the JSON and the builder in step ---------------------------------------------------

  var fallbackReason = "";

  function changed() {
    if (!state) { return; }
    textarea.value = JSON.stringify(toDefinition(state), null, 2);
    showJsonProblem(null);
  }

  function showJsonProblem(message) {
    var box = document.getElementById("json-problem");
    box.hidden = !message;
    box.textContent = message || "";
  }

  function readText(initial) {
    var raw = textarea.value.trim();
    if (!raw) {
      state = { trigger: newTrigger("event"), reentry: { mode: "never" }, goal: null, extra: {}, steps: [] };
      return true;
    }
    var document;
    try { document = JSON.parse(raw); } catch (error) {
      showJsonProblem(L("json_invalid", { error: error.message }));
      if (initial) { state = null; fallbackReason = error.message; }
      return false;
    }
    try {
      state = fromDefinition(document);
      showJsonProblem(null);
    } catch (error) {
      if (!error.unstructured) { throw error; }
      state = null;
      fallbackReason = error.message;
    }
    return true;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var source = document.getElementById("journey-builder-data");
    if (!source) { return; }
    data = JSON.parse(source.textContent);
    labels = JSON.parse(document.getElementById("journey-builder-labels").textContent);
    catalog = data.catalog;
    textarea = document.getElementById("definition");
    errorAt = data.error_at;
    var untouched = textarea.value;
    readText(true);
    draw();
    if (data.error) { textarea.value = untouched; } // show what was sent, as sent, beside its error
    textarea.addEventListener("input", function () {
      window.clearTimeout(typingTimer);
      typingTimer = window.setTimeout(function () {
        errorAt = null;
        if (readText(false)) {
          var typed = textarea.value;
          draw();
          textarea.value = typed; // keep the hand-written text while it is being written
        }
      }, 400);
    });
    window.journeyBuilder = { definition: function () { return state ? toDefinition(state) : null; } };
  });
})();
