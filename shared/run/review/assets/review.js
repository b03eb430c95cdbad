// The review page's behaviour: filters over the trajectories' summaries, the list (Grid.js), and one trajectory's
// view, built from its own JSON block when it is opened. Every text of a record goes in as a text node, never as
// markup: a dialogue is model output.
(function () {
  "use strict";

  var byId = function (id) { return document.getElementById(id); };
  var summaries = JSON.parse(byId("tf-summaries").textContent);
  var figures = JSON.parse(byId("tf-figures").textContent);
  summaries.forEach(function (s, i) { s.index = i; });
  var LONG = 400; // characters past which a text is folded
  var PAGE_SIZE = 20;

  // -- building elements --------------------------------------------------------------------------------------
  function el(tag, props) {
    var node = document.createElement(tag);
    Object.keys(props || {}).forEach(function (key) {
      if (key === "class") node.className = props[key];
      else if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), props[key]);
      else node.setAttribute(key, props[key]);
    });
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }
  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); return; }
    node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
  function badge(text, kind) { return el("span", { "class": "badge " + (kind || "") }, text); }
  function pretty(text) {
    if (typeof text !== "string") return JSON.stringify(text, null, 2);
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
  }
  // A block of text, folded behind a one-line preview when it is long.
  function block(text, label) {
    var body = el("pre", {}, text);
    if (text.length <= LONG && text.split("\n").length <= 12) return body;
    var preview = text.replace(/\s+/g, " ").slice(0, 110);
    return el("details", { "class": "fold" },
      el("summary", {}, (label ? label + " · " : "") + text.length + " characters · " + preview + "…"), body);
  }
  function fmt(value) {
    if (value === null || value === undefined) return "–";
    if (typeof value === "number" && !Number.isInteger(value)) return value.toFixed(3).replace(/\.?0+$/, "");
    return String(value);
  }
  function table(head, rows) {
    return el("table", { "class": "figures" },
      head ? el("thead", {}, el("tr", {}, head.map(function (h) { return el("th", {}, h); }))) : null,
      el("tbody", {}, rows.map(function (row) {
        return el("tr", {}, row.map(function (cell) { return el("td", {}, cell instanceof Node ? cell : fmt(cell)); }));
      })));
  }
  // Any figure as it comes: an object as a table of its keys, nested as deep as it goes.
  function anyValue(value) {
    if (value === null || typeof value !== "object") return fmt(value);
    if (Array.isArray(value)) {
      if (value.every(function (v) { return v === null || typeof v !== "object"; })) return value.map(fmt).join(", ");
      return table(null, value.map(function (v) { return Array.isArray(v) ? v.map(anyValue) : [anyValue(v)]; }));
    }
    return table(null, Object.keys(value).map(function (k) { return [k.replace(/_/g, " "), anyValue(value[k])]; }));
  }

  // -- figures of the whole set -------------------------------------------------------------------------------
  function renderFigures() {
    var body = byId("figures-body");
    var counts = figures.counts;
    body.appendChild(el("div", { "class": "counts" }, Object.keys(counts).map(function (outcome) {
      return el("button", { "class": "count " + outcome, title: "show only these", onclick: function () {
        setFilter("f-outcome", outcome);
      } }, el("b", {}, counts[outcome]), " " + outcome);
    })));
    var sections = el("div", { "class": "sections" });
    var dataset = figures.dataset || {};
    if (dataset.by_mode) {
      sections.appendChild(el("div", {}, el("h3", {}, "Table 1 and Table 4: density and efficiency (accepted)"),
        table(["pipeline mode", "samples", "steps", "turns", "tasks", "latency per sample (s)", "generated tokens/s"],
          Object.keys(dataset.by_mode).map(function (mode) {
            var f = dataset.by_mode[mode];
            return [mode, f.samples, fmt(f.steps_mean) + " (" + f.steps_max + ")", fmt(f.turns_mean) + " (" +
              f.turns_max + ")", fmt(f.tasks_mean) + " (" + f.tasks_max + ")", f.latency_s_per_sample,
              f.generated_tokens_per_s];
          })), el("p", { "class": "muted" }, "mean (max); a step is one tool-use iteration for one user request")));
    }
    Object.keys(dataset).filter(function (k) { return k !== "by_mode"; }).forEach(function (name) {
      sections.appendChild(el("div", {}, el("h3", {}, name.replace(/_/g, " ")), anyValue(dataset[name])));
    });
    if (figures.reasons.length) {
      var heading = "rejected" in counts ? "Why trajectories were left out" : "Why trials failed";
      sections.appendChild(el("div", {}, el("h3", {}, heading),
        table(["reason", "trajectories"], figures.reasons.map(function (pair) {
          return [el("a", { href: "#", onclick: function (e) { e.preventDefault(); setFilter("f-reason", pair[0]); } },
            pair[0]), pair[1]];
        }))));
    }
    if (figures.evaluation) {
      sections.appendChild(el("div", {}, el("h3", {}, "Evaluation"), anyValue(figures.evaluation)));
    }
    body.appendChild(sections);
    if (figures.plots.length) {
      body.appendChild(el("div", { "class": "plots" }, figures.plots.map(function (plot) {
        return el("figure", {}, el("img", { src: plot.src, alt: plot.name }), el("figcaption", {}, plot.name));
      })));
    }
  }

  // -- filters ------------------------------------------------------------------------------------------------
  function options(id, values) {
    var select = byId(id);
    values.forEach(function (v) { select.appendChild(el("option", { value: v }, v)); });
  }
  function distinct(pick) {
    var seen = {};
    summaries.forEach(function (s) { [].concat(pick(s)).forEach(function (v) { if (v !== "") seen[v] = true; }); });
    return Object.keys(seen).sort(function (a, b) { return isNaN(a) || isNaN(b) ? a.localeCompare(b) : a - b; });
  }
  options("f-outcome", distinct(function (s) { return s.outcome; }));
  options("f-domain", distinct(function (s) { return s.domain; }));
  options("f-reason", distinct(function (s) { return s.reasons; }));
  options("f-tasks", distinct(function (s) { return String(s.tasks); }));
  options("f-difficulty", distinct(function (s) { return s.difficulty; }));

  function escapeRegExp(text) { return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"); }
  function matcher() {
    var f = {
      outcome: byId("f-outcome").value, domain: byId("f-domain").value, reason: byId("f-reason").value,
      tasks: byId("f-tasks").value, difficulty: byId("f-difficulty").value,
      min: byId("f-min").value === "" ? -Infinity : Number(byId("f-min").value),
      max: byId("f-max").value === "" ? Infinity : Number(byId("f-max").value),
      search: byId("f-search").value.trim()
    };
    var pattern = f.search ? new RegExp(escapeRegExp(f.search), "i") : null;
    return function (s) {
      if (f.outcome && s.outcome !== f.outcome) return false;
      if (f.domain && s.domain !== f.domain) return false;
      if (f.reason && s.reasons.indexOf(f.reason) < 0) return false;
      if (f.tasks && String(s.tasks) !== f.tasks) return false;
      if (f.difficulty && s.difficulty.indexOf(f.difficulty) < 0) return false;
      if (s.turns < f.min || s.turns > f.max) return false;
      if (!pattern) return true;
      // the summary first; then the trajectory's own record text, read from its block without parsing it
      return pattern.test(s.id) || pattern.test(s.seed) || pattern.test(s.text) ||
        pattern.test(byId("tf-d" + s.index).textContent);
    };
  }

  var filtered = summaries;
  var h = gridjs.h;
  var grid = new gridjs.Grid({
    columns: [
      { id: "index", hidden: true },
      { id: "outcome", name: "outcome", width: "108px",
        formatter: function (cell) { return h("span", { className: "badge " + cell }, cell); } },
      { id: "id", name: "trajectory", formatter: function (cell, row) {
        // the id, then where it comes from, then why it was left out
        var s = summaries[row.cells[0].data];
        return h("div", {}, h("div", {}, cell),
          h("div", { className: "muted small" }, [s.domain, s.mode].filter(Boolean).join(" · ")),
          s.reasons.length ? h("div", {}, s.reasons.map(function (r) { return h("span", { className: "reason-tag" }, r); })) : null);
      } },
      { id: "tasks", name: "tasks", width: "82px" },
      { id: "turns", name: "turns", width: "82px" }
    ],
    data: filtered,
    sort: true,
    pagination: { limit: PAGE_SIZE, summary: true },
    className: { table: "trajectories" }
  }).render(byId("list"));
  grid.on("rowClick", function (event, row) {
    var selected = byId("list").querySelector("tr.selected");
    if (selected) selected.classList.remove("selected");
    var tr = event.target.closest("tr");
    if (tr) tr.classList.add("selected");
    openTrajectory(row.cells[0].data);
  });

  function applyFilters() {
    filtered = summaries.filter(matcher());
    byId("f-count").textContent = filtered.length + " of " + summaries.length + " trajectories";
    grid.updateConfig({ data: filtered }).forceRender();
  }
  function setFilter(id, value) {
    byId(id).value = value;
    applyFilters();
    byId("filters").scrollIntoView({ behavior: "smooth" });
  }
  var pending = null;
  function later() { clearTimeout(pending); pending = setTimeout(applyFilters, 200); }
  ["f-outcome", "f-domain", "f-reason", "f-tasks", "f-difficulty"].forEach(function (id) {
    byId(id).addEventListener("change", applyFilters);
  });
  ["f-min", "f-max", "f-search"].forEach(function (id) { byId(id).addEventListener("input", later); });

  // -- one trajectory -----------------------------------------------------------------------------------------
  var current = null;
  var cache = {};
  function detailOf(index) {
    if (!(index in cache)) cache[index] = JSON.parse(byId("tf-d" + index).textContent);
    return cache[index];
  }

  function openTrajectory(index) {
    var s = summaries[index], d = detailOf(index);
    current = index;
    var failedBy = {};
    d.checks.forEach(function (c) {
      if (!c.passed) c.messages.forEach(function (m) { (failedBy[m] = failedBy[m] || []).push(c.name); });
    });
    var root = byId("detail");
    root.replaceChildren(head(s, d), checks(s, d));
    if (!d.dead_letter) {  // a dead letter has no dialogue or tasks to show
      root.appendChild(el("div", { "class": "columns" }, conversation(d, failedBy), side(d)));
    }
    if (location.hash.slice(1) !== encodeURIComponent(s.id)) history.replaceState(null, "", "#" + encodeURIComponent(s.id));
    root.scrollTop = 0;
  }

  function step(by) {
    if (!filtered.length) return;
    var at = filtered.findIndex(function (s) { return s.index === current; });
    var next = filtered[Math.min(Math.max(at + by, 0), filtered.length - 1)];
    if (at < 0) next = filtered[0];
    openTrajectory(next.index);
  }

  function head(s, d) {
    return el("div", { "class": "head" },
      el("div", { "class": "title" }, badge(s.outcome, s.outcome), el("h2", {}, s.id),
        el("span", { "class": "nav" },
          el("button", { onclick: function () { step(-1); }, title: "previous (k)" }, "‹ prev"),
          el("button", { onclick: function () { step(1); }, title: "next (j)" }, "next ›"))),
      el("dl", { "class": "facts" }, d.facts.map(function (f) { return [el("dt", {}, f[0]), el("dd", {}, f[1])]; })));
  }

  function jumpTo(index) {
    var target = byId("m" + index);
    if (!target) return;
    if (target.tagName === "DETAILS") target.open = true;
    target.scrollIntoView({ behavior: "smooth", block: "center" });
    target.classList.remove("flash");
    void target.offsetWidth;
    target.classList.add("flash");
  }

  function checks(s, d) {
    var box = el("div", { "class": "checks" });
    if (d.dead_letter) {
      box.appendChild(el("p", { "class": "reason" }, "Dead-lettered: " + d.reasons.join("; ")));
      return box;
    }
    var failed = d.checks.filter(function (c) { return !c.passed; });
    var passed = d.checks.filter(function (c) { return c.passed; });
    if (failed.length) {
      box.appendChild(el("h3", {}, failed.length + " of " + d.checks.length + " checks failed"));
      box.appendChild(el("ul", { "class": "failed-checks" }, failed.map(function (c) {
        return el("li", {}, el("span", { "class": "check-name" }, "✗ " + c.name), " ", el("span", {}, c.detail),
          c.messages.length ? el("span", { "class": "where" }, " in ", c.messages.map(function (m, i) {
            return [i ? ", " : "", el("a", { href: "#", onclick: function (e) { e.preventDefault(); jumpTo(m); } },
              "message " + m)];
          })) : el("span", { "class": "where muted" }, " (the dialogue as a whole)"));
      })));
    }
    var judgeReason = d.reasons.filter(function (r) { return r.indexOf("judge:") === 0; });
    if (judgeReason.length) box.appendChild(el("p", { "class": "reason" }, judgeReason.join("; ")));
    if (passed.length) {
      box.appendChild(el("details", { "class": "passed-checks" },
        el("summary", {}, (failed.length ? passed.length + " passed" : "all " + passed.length + " checks passed")),
        el("ul", {}, passed.map(function (c) {
          return el("li", {}, el("span", { "class": "ok" }, "✓ " + c.name), c.detail ? " " + c.detail : "");
        }))));
    }
    var judge = d.judge || {};
    if (judge.decision || judge.label || (judge.rubric || []).length) {
      box.appendChild(el("details", { "class": "judge" },
        el("summary", {}, "judge: " + (judge.decision || "–") + (judge.label ? " (its label: " + judge.label + ")" : "")),
        judge.reasoning ? block(judge.reasoning) : null,
        el("ul", {}, (judge.rubric || []).map(function (r) {
          return el("li", {}, r.satisfied ? el("span", { "class": "ok" }, "✓ ") : el("span", { "class": "bad" }, "✗ "),
            "[" + r.category + "] " + r.item);
        }))));
    }
    return box;
  }

  var ROLE = { user: "user", assistant: "agent", tool: "tool", system: "system" };
  function conversation(d, failedBy) {
    var names = {};
    d.messages.forEach(function (m) { (m.tool_calls || []).forEach(function (c) { names[c.id] = c.function.name; }); });
    return el("div", { "class": "conversation" }, el("h3", {}, "Dialogue"),
      d.messages.length ? d.messages.map(function (m, i) { return message(m, i, d, failedBy[i] || [], names); })
        : el("p", { "class": "muted" }, "No dialogue."));
  }

  function message(m, index, d, failed, names) {
    var given = index < d.given && m.role !== "system";
    var who = el("div", { "class": "who" }, "#" + index + " " + (ROLE[m.role] || m.role),
      m.role === "tool" ? " · " + (m.name || names[m.tool_call_id] || "") + " (" + m.tool_call_id + ")" : "",
      given ? badge("given context", "given") : null,
      failed.map(function (name) { return badge("fails " + name, "fail"); }));
    if (m.role === "system") {
      return el("details", { "class": "msg system", id: "m" + index },
        el("summary", {}, "#" + index + " system prompt · " + (m.content || "").length + " characters"),
        el("pre", {}, m.content || ""));
    }
    var box = el("div", { "class": "msg " + m.role + (failed.length ? " failed" : "") + (given ? " is-given" : ""),
      id: "m" + index }, who);
    if (m.role === "tool") {
      var result = d.call_results[m.tool_call_id];
      if (result && !result.ok) box.appendChild(badge("error" + (result.error ? ": " + result.error : ""), "fail"));
      box.appendChild(block(pretty(m.content || ""), "result"));
      return box;
    }
    if (m.content) box.appendChild(el("div", { "class": "text" }, m.content));
    (m.tool_calls || []).forEach(function (call) {
      box.appendChild(el("div", { "class": "call" },
        el("div", { "class": "call-name" }, "→ " + call.function.name, el("span", { "class": "muted" }, " " + call.id)),
        block(pretty(call.function.arguments || "{}"), "arguments")));
    });
    return box;
  }

  function side(d) {
    var box = el("div", { "class": "side" }, el("h3", {}, d.tasks.length + (d.tasks.length === 1 ? " task" : " tasks")));
    d.tasks.forEach(function (t, i) {
      box.appendChild(el("div", { "class": "task" },
        el("div", { "class": "task-head" }, "Task " + (i + 1), badge(t.difficulty, "difficulty"),
          t.changes_data ? badge("changes data", "writes") : badge("reads only", "reads")),
        el("p", {}, t.description),
        taskFacts(t),
        el("div", { "class": "label" }, "golden actions"),
        el("ol", { "class": "golden" }, t.golden_actions.map(function (a) {
          return el("li", {}, el("code", {}, a.tool), block(pretty(a.arguments), "arguments"),
            a.result !== null && a.result !== undefined ? [el("div", { "class": "label" }, "returns"),
              block(pretty(a.result), "result")] : null);
        })),
        t.subtasks.length ? [el("div", { "class": "label" }, "subtasks"), el("ul", {}, t.subtasks.map(function (sub) {
          return el("li", {}, sub.description);
        }))] : null,
        rubric(t.rubric)));
    });
    if (d.setup_actions.length) {
      box.appendChild(el("details", { "class": "fold" }, el("summary", {}, "start state: " + d.setup_actions.length +
        " setup action(s)"), el("ol", {}, d.setup_actions.map(function (a) {
        return el("li", {}, el("code", {}, a.tool), " ", JSON.stringify(a.arguments));
      }))));
    }
    if (d.tools.length) {
      box.appendChild(el("details", { "class": "tools" }, el("summary", {}, d.tools.length + " tools offered"),
        d.tools.map(function (spec) {
          var f = spec.function, binding = d.bindings[f.name] || {};
          return el("div", { "class": "tool" }, el("code", {}, f.name),
            binding.effect ? badge(binding.effect.kind + (binding.effect.table ? " " + binding.effect.table : ""), "effect") : null,
            el("p", {}, f.description || ""),
            binding.sql ? block(binding.sql.statement, "SQL") : null,
            block(pretty(f.parameters || {}), "parameters"));
        })));
    }
    return box;
  }

  // What the task generator recorded about where a task came from (fields a record may not have).
  function taskFacts(t) {
    var facts = [];
    if (t.root) facts.push("about " + t.root.table + " " + JSON.stringify(t.root.record));
    if (t.hops) facts.push(t.hops + (t.hops === 1 ? " hop" : " hops") + " from it");
    if (t.builds_on) facts.push("builds on " + t.builds_on);
    return facts.length ? el("div", { "class": "muted small" }, facts.join(" · ")) : null;
  }

  function rubric(r) {
    if (!r) return null;
    var items = [["success criteria", r.success_criteria], ["expected tool use", r.expected_tool_use],
      ["checkpoints", r.checkpoints]].filter(function (pair) { return pair[1] && pair[1].length; });
    if (!items.length) return null;
    return el("details", { "class": "fold" }, el("summary", {}, "rubric"), items.map(function (pair) {
      return [el("div", { "class": "label" }, pair[0]), el("ul", {}, pair[1].map(function (x) { return el("li", {}, x); }))];
    }));
  }

  // -- start ----------------------------------------------------------------------------------------------------
  document.addEventListener("keydown", function (e) {
    if (/INPUT|SELECT|TEXTAREA/.test(e.target.tagName)) return;
    if (e.key === "j") step(1);
    if (e.key === "k") step(-1);
  });
  renderFigures();
  byId("f-count").textContent = summaries.length + " trajectories";
  var wanted = decodeURIComponent(location.hash.slice(1));
  var linked = summaries.find(function (s) { return s.id === wanted; });
  if (linked) openTrajectory(linked.index);
  window.turnforgeReview = { ready: true, shown: function () { return filtered.length; } };
})();
