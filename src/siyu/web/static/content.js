// Content pages: the template editor's live preview for a chosen customer, and copying snippets.
(function () {
  "use strict";

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function variants(form) {
    var f = function (name) { var input = form.elements[name]; return input ? input.value.trim() : ""; };
    var out = {};
    var materials = f("wecom_materials").replace(/，/g, ",").split(",").map(function (k) { return k.trim(); }).filter(Boolean);
    if (f("wecom_text") || materials.length) {
      out.wecom = { text: f("wecom_text"), attachments: materials.map(function (k) { return { snippet: k }; }) };
    }
    if (f("sms_text")) out.sms = { text: f("sms_text"), sign_name: f("sms_sign_name") };
    if (f("email_subject") || f("email_text") || f("email_html")) {
      out.email = { subject: f("email_subject"), text: f("email_text") };
      if (f("email_html")) out.email.html = f("email_html");
    }
    return out;
  }

  function show(box, data) {
    var body = document.getElementById("preview-body");
    body.textContent = "";
    data.channels.forEach(function (ch) {
      var part = el("div", "channel");
      part.dataset.channel = ch.channel;
      part.appendChild(el("h3", "", box.dataset["l" + ch.channel.charAt(0).toUpperCase() + ch.channel.slice(1)] || ch.channel));
      if (ch.content && ch.sms) {
        var received = el("pre", "", ch.sms.received);
        received.dataset.field = "text";
        part.appendChild(received);
      } else if (ch.content) {
        Object.keys(ch.content).forEach(function (name) {
          var value = ch.content[name];
          if (typeof value !== "string") value = JSON.stringify(value);
          if (!value) return;
          var pre = el("pre", "", value);
          pre.dataset.field = name;
          part.appendChild(pre);
        });
      }
      if (ch.sms) {
        var s = ch.sms;
        part.appendChild(el("p", "small sms-count", box.dataset.lSmslen.replace("{length}", s.length).replace("{parts}", s.parts)
          .replace("{encoding}", s.encoding.toUpperCase()).replace("{per_part}", s.per_part)));
      }
      if (ch.links && ch.links.length) {
        part.appendChild(el("p", "small muted", box.dataset.lLinks + ": " + ch.links.join(", ")));
      }
      if (ch.problems.length) {
        var list = el("ul", "problems");
        ch.problems.forEach(function (p) {
          list.appendChild(el("li", "", p.where + " — " + p.message + (p.hint ? " (" + p.hint + ")" : "")));
        });
        part.appendChild(list);
      } else {
        part.appendChild(el("p", "small ok", box.dataset.lOk));
      }
      body.appendChild(part);
    });
  }

  function setupPreview() {
    var box = document.getElementById("preview");
    var form = document.getElementById("template-form");
    var picker = document.getElementById("preview-customer");
    if (!box || !form || !picker) return;
    var timer = null;
    var run = function () {
      if (!picker.value) return;
      fetch(box.dataset.url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": box.dataset.csrf },
        body: JSON.stringify({ customer_id: Number(picker.value), variants: variants(form) })
      }).then(function (r) { return r.json().then(function (j) { return [r.ok, j]; }); })
        .then(function (pair) {
          if (pair[0]) { show(box, pair[1]); return; }
          var body = document.getElementById("preview-body");
          body.textContent = pair[1].message || "error";
        });
    };
    var later = function () { clearTimeout(timer); timer = setTimeout(run, 300); };
    picker.addEventListener("change", run);
    form.querySelectorAll("[data-preview]").forEach(function (input) { input.addEventListener("input", later); });
  }

  function setupCopy() {
    var table = document.getElementById("snippets");
    if (!table) return;
    table.addEventListener("click", function (event) {
      var button = event.target.closest("[data-copy]");
      if (!button) return;
      if (navigator.clipboard) navigator.clipboard.writeText(button.dataset.text).catch(function () {});
      fetch("/api/content/snippets/" + button.dataset.copy + "/copy", {
        method: "POST", credentials: "same-origin", headers: { "Accept": "application/json", "X-CSRF-Token": table.dataset.csrf }
      }).then(function (r) { return r.json(); }).then(function (s) {
        var cell = button.closest("tr").querySelector("[data-copies]");
        if (cell && s.copy_count !== undefined) cell.textContent = s.copy_count;
        button.textContent = table.dataset.lCopied;
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { setupPreview(); setupCopy(); });
})();
