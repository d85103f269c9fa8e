#include "daemon/status.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <cmath>
#include <cstdio>
#include <sstream>

#include "util/duration.h"

namespace tokend::daemon {

namespace {

using Poco::Dynamic::Var;
using Poco::JSON::Array;
using Poco::JSON::Object;

constexpr std::chrono::seconds kDay{86400};

// "2026-03-01 12:00:00 UTC".
std::string when_text(Timestamp t) {
  std::string text = format_rfc3339(t);  // 2026-03-01T12:00:00Z
  if (text.size() == 20) text = text.substr(0, 10) + " " + text.substr(11, 8) + " UTC";
  return text;
}

// "4m30s", "1h5m" below two days, else "3 days" (whole days).
std::string span_text(std::chrono::seconds span) {
  if (span >= 2 * kDay) return std::to_string(span / kDay) + " days";
  return format_duration(span);
}

// "in 4m30s" / "2h ago" / "in 3 days".
std::string relative_text(Timestamp t, Timestamp now) {
  const std::chrono::seconds delta = t - now;
  if (delta.count() >= 0) return "in " + span_text(delta);
  return span_text(-delta) + " ago";
}

// Whole days left before `t` (negative once it has passed).
int64_t days_left(Timestamp t, Timestamp now) {
  const double days = std::chrono::duration<double>(t - now).count() / kDay.count();
  return static_cast<int64_t>(std::floor(days));
}

std::string days_text(int64_t days) {
  if (days < 0) return "expired";
  return std::to_string(days) + (days == 1 ? " day left" : " days left");
}

std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1fs", seconds);
  return text;
}

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

std::string role_text(const Role& role) {
  std::string text =
      role.role + " on " + std::string(to_string(role.entity_type)) + " " + role.entity_id;
  if (!role.deployment_id.empty()) text += " (deployment " + role.deployment_id + ")";
  return text;
}

// The one-word state of a token and its explanation.
std::pair<std::string, std::string> token_state(const TokenStatus& token, Timestamp now) {
  if (!token.failure.empty()) {
    std::string detail = token.failure;
    if (token.retry_at) detail += "; retrying " + relative_text(*token.retry_at, now);
    return {"failing", detail};
  }
  if (token.deleted_outside) return {"drift", "deleted outside astro-tokend"};
  if (!token.drifted.empty())
    return {"drift", "changed outside astro-tokend: " + join(token.drifted, ", ")};
  if (!token.pending.empty()) return {"pending", token.pending};
  return {"ok", ""};
}

const char* kStyle = R"CSS(
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em; color: #1d2330; background: #fff; }
h1 { font-size: 1.5em; margin: 0 0 .2em; }
h2 { font-size: 1.15em; margin: 1.6em 0 .5em; border-bottom: 1px solid #d6dae3; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .3em .6em; border-bottom: 1px solid #eceef3; }
th { background: #f4f6fa; font-weight: 600; }
dl { display: grid; grid-template-columns: max-content auto; gap: .2em 1.2em; margin: 0; }
dt { font-weight: 600; }
dd { margin: 0; }
code, .mono { font-family: ui-monospace, monospace; font-size: .95em; }
.ok, .success { color: #17743a; }
.pending, .planned { color: #8a5a00; }
.failing, .failure, .failed, .refused, .drift, .expired { color: #b42318; font-weight: 600; }
.muted { color: #5b6475; }
ul.roles { margin: 0; padding-left: 1.1em; }
)CSS";

class Html {
 public:
  void raw(std::string_view text) { out_ += text; }
  void text(std::string_view text) { out_ += html_escape(text); }
  // <tag class="cls">escaped text</tag>
  void element(std::string_view tag, std::string_view text, std::string_view cls = "") {
    out_ += "<" + std::string(tag);
    if (!cls.empty()) out_ += " class=\"" + html_escape(cls) + "\"";
    out_ += ">" + html_escape(text) + "</" + std::string(tag) + ">";
  }
  void term(std::string_view name, std::string_view value, std::string_view cls = "") {
    element("dt", name);
    element("dd", value, cls);
    out_ += "\n";
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

Var optional_time(const std::optional<Timestamp>& t) { return t ? Var(format_rfc3339(*t)) : Var(); }

Object::Ptr new_object() { return new Object(Poco::JSON_PRESERVE_KEY_ORDER); }

Array::Ptr strings(const std::vector<std::string>& items) {
  Array::Ptr array = new Array;
  for (const std::string& item : items) array->add(item);
  return array;
}

Object::Ptr counts_object(int add, int change, int destroy, int rotate) {
  Object::Ptr counts = new_object();
  counts->set("add", add);
  counts->set("change", change);
  counts->set("destroy", destroy);
  counts->set("rotate", rotate);
  return counts;
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string render_status_html(const StatusSnapshot& s, Timestamp now) {
  Html h;
  h.raw("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
  h.raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
  h.text("astro-tokend " + s.version + " - " + s.organization_id);
  h.raw("</title>\n<style>");
  h.raw(kStyle);
  h.raw("</style>\n</head>\n<body>\n<h1>astro-tokend</h1>\n<p class=\"muted\">");
  h.text("Version " + s.version + " · organization " + s.organization_id + " · as of " +
         when_text(now));
  h.raw("</p>\n");

  h.raw("<h2 id=\"daemon\">Daemon</h2>\n<dl>\n");
  h.term("State", s.state);
  h.term("Mode", s.mode == "plan" ? "plan (reports changes, applies nothing)" : s.mode);
  h.term("Leader", s.leader ? "yes" : "no (standing by)");
  if (s.started_at) h.term("Started", when_text(*s.started_at));
  if (s.config_loaded_at) h.term("Configuration loaded", when_text(*s.config_loaded_at));
  if (!s.last_reload_ok) h.term("Last reload", "refused: " + s.reload_error, "failure");
  h.term("Interval", format_duration(std::chrono::milliseconds(
                         static_cast<int64_t>(std::llround(s.interval_seconds * 1000)))));
  h.raw("</dl>\n");

  h.raw("<h2 id=\"reconcile\">Last reconcile</h2>\n");
  if (!s.reconciled) {
    h.raw("<p>None yet: the first reconcile is running.</p>\n");
  } else {
    h.raw("<dl>\n");
    if (s.last_cycle_at)
      h.term("Time",
             when_text(*s.last_cycle_at) + " (" + relative_text(*s.last_cycle_at, now) + ")");
    h.term("Result", s.last_result, s.last_result);
    h.term("Trigger", s.last_trigger);
    h.term("Duration", seconds_text(s.last_duration_seconds));
    h.term("Summary", s.last_summary);
    if (!s.last_error.empty()) h.term("Error", s.last_error, "failure");
    if (s.next_cycle_at)
      h.term("Next run",
             when_text(*s.next_cycle_at) + " (" + relative_text(*s.next_cycle_at, now) + ")");
    h.raw("</dl>\n");
  }

  h.raw("<h2 id=\"plan\">Last plan</h2>\n");
  if (!s.planned) {
    h.raw("<p>No plan yet.</p>\n");
  } else {
    h.raw("<p>");
    h.text("Plan: " + std::to_string(s.plan_counts.add) + " to add, " +
           std::to_string(s.plan_counts.change) + " to change, " +
           std::to_string(s.plan_counts.destroy) + " to destroy, " +
           std::to_string(s.plan_counts.rotate) + " to rotate; " + std::to_string(s.drift) +
           (s.drift == 1 ? " token" : " tokens") + " changed outside astro-tokend.");
    h.raw("</p>\n");
    if (!s.plan_changes.empty()) {
      h.raw("<table>\n<thead><tr><th>Address</th><th>Action</th></tr></thead>\n<tbody>\n");
      for (const PlannedChange& change : s.plan_changes) {
        h.raw("<tr>");
        h.element("td", change.address, "mono");
        h.element("td", change.action +
                            (change.rotate && change.action != "rotate" ? " and rotate" : ""));
        h.raw("</tr>\n");
      }
      h.raw("</tbody>\n</table>\n");
    }
  }

  h.raw("<h2 id=\"tokens\">Tokens</h2>\n");
  if (s.tokens.empty()) {
    h.raw("<p>No managed tokens.</p>\n");
  } else {
    h.raw(
        "<table>\n<thead><tr><th>Address</th><th>Name</th><th>Type</th><th>Kind</th>"
        "<th>Roles</th>"
        "<th>Expires</th><th>Last rotation</th><th>Next rotation</th><th>Status</th></tr>"
        "</thead>\n<tbody>\n");
    for (const TokenStatus& token : s.tokens) {
      h.raw("<tr>");
      h.element("td", token.address, "mono");
      h.element("td", token.name);
      h.element("td", std::string(to_string(token.type)));
      h.element("td", std::string(to_string(token.kind)));
      h.raw("<td><ul class=\"roles\">");
      for (const Role& role : token.roles) h.element("li", role_text(role));
      h.raw("</ul></td>");
      if (token.expires_at) {
        const int64_t days = days_left(*token.expires_at, now);
        h.element("td", when_text(*token.expires_at) + " (" + days_text(days) + ")",
                  days < 0 ? "expired" : "");
      } else {
        h.element("td", "never");
      }
      h.element("td", token.last_rotation ? when_text(*token.last_rotation) : "unknown");
      h.element("td", token.next_rotation ? when_text(*token.next_rotation) + " (" +
                                                relative_text(*token.next_rotation, now) + ")"
                                          : "none planned");
      auto [word, detail] = token_state(token, now);
      h.raw("<td>");
      h.element("span", word, word);
      if (!detail.empty()) {
        h.raw(": ");
        h.text(detail);
      }
      h.raw("</td></tr>\n");
    }
    h.raw("</tbody>\n</table>\n");
  }

  h.raw("<h2 id=\"history\">Recent history</h2>\n");
  if (s.history.empty()) {
    h.raw("<p>No runs recorded yet.</p>\n");
  } else {
    h.raw(
        "<table>\n<thead><tr><th>Run</th><th>Started</th><th>Trigger</th><th>Command</th>"
        "<th>Result</th><th>Add</th><th>Change</th><th>Destroy</th><th>Rotate</th>"
        "<th>Failed</th><th>API calls</th><th>Duration</th><th>Message</th></tr></thead>\n"
        "<tbody>\n");
    for (const state::RunRecord& run : s.history) {
      const std::string result(state::to_string(run.result));
      h.raw("<tr>");
      h.element("td", std::to_string(run.id));
      h.element("td", when_text(run.started_at));
      h.element("td", run.trigger);
      h.element("td", run.command);
      h.element("td", result, result);
      for (int n :
           {run.to_add, run.to_change, run.to_destroy, run.to_rotate, run.failed, run.api_calls})
        h.element("td", std::to_string(n));
      h.element("td", seconds_text(run.duration_seconds));
      h.element("td", run.message);
      h.raw("</tr>\n");
    }
    h.raw("</tbody>\n</table>\n");
  }
  h.raw(
      "<p class=\"muted\">The same data as JSON: <a href=\"status.json\">status.json</a> · "
      "metrics: <a href=\"metrics\">metrics</a></p>\n</body>\n</html>\n");
  return h.take();
}

std::string render_status_json(const StatusSnapshot& s, Timestamp now) {
  Object root(Poco::JSON_PRESERVE_KEY_ORDER);
  root.set("generated_at", format_rfc3339(now));

  Object::Ptr daemon = new_object();
  daemon->set("version", s.version);
  daemon->set("organization_id", s.organization_id);
  daemon->set("state", s.state);
  daemon->set("mode", s.mode);
  daemon->set("leader", s.leader);
  daemon->set("started_at", optional_time(s.started_at));
  daemon->set("config_loaded_at", optional_time(s.config_loaded_at));
  daemon->set("last_reload_ok", s.last_reload_ok);
  daemon->set("reload_error", s.last_reload_ok ? Var() : Var(s.reload_error));
  daemon->set("interval_seconds", s.interval_seconds);
  root.set("daemon", daemon);

  if (s.reconciled) {
    Object::Ptr last = new_object();
    last->set("started_at", optional_time(s.last_cycle_at));
    last->set("result", s.last_result);
    last->set("trigger", s.last_trigger);
    last->set("duration_seconds", s.last_duration_seconds);
    last->set("summary", s.last_summary);
    last->set("error", s.last_error.empty() ? Var() : Var(s.last_error));
    last->set("next_run_at", optional_time(s.next_cycle_at));
    root.set("last_reconcile", last);
  } else {
    root.set("last_reconcile", Var());
  }

  if (s.planned) {
    Object::Ptr planned = new_object();
    planned->set("counts", counts_object(s.plan_counts.add, s.plan_counts.change,
                                         s.plan_counts.destroy, s.plan_counts.rotate));
    planned->set("drift", s.drift);
    Array::Ptr changes = new Array;
    for (const PlannedChange& change : s.plan_changes) {
      Object::Ptr entry = new_object();
      entry->set("address", change.address);
      entry->set("action", change.action);
      entry->set("rotate", change.rotate);
      changes->add(entry);
    }
    planned->set("changes", changes);
    root.set("plan", planned);
  } else {
    root.set("plan", Var());
  }

  Array::Ptr tokens = new Array;
  for (const TokenStatus& token : s.tokens) {
    Object::Ptr entry = new_object();
    entry->set("address", token.address);
    entry->set("id", token.id);
    entry->set("name", token.name);
    entry->set("type", std::string(to_string(token.type)));
    entry->set("kind", std::string(to_string(token.kind)));
    entry->set("role", token.role);
    Array::Ptr roles = new Array;
    for (const Role& role : token.roles) {
      Object::Ptr r = new_object();
      r->set("role", role.role);
      r->set("entity_id", role.entity_id);
      r->set("entity_type", std::string(to_string(role.entity_type)));
      if (!role.deployment_id.empty()) r->set("deployment_id", role.deployment_id);
      roles->add(r);
    }
    entry->set("roles", roles);
    entry->set("expires_at", optional_time(token.expires_at));
    entry->set("days_left", token.expires_at ? Var(days_left(*token.expires_at, now)) : Var());
    entry->set("last_rotation_at", optional_time(token.last_rotation));
    entry->set("next_rotation_at", optional_time(token.next_rotation));
    auto [word, detail] = token_state(token, now);
    entry->set("status", word);
    entry->set("drifted", strings(token.drifted));
    entry->set("deleted_outside", token.deleted_outside);
    entry->set("pending", token.pending.empty() ? Var() : Var(token.pending));
    entry->set("failure", token.failure.empty() ? Var() : Var(token.failure));
    entry->set("retry_at", optional_time(token.retry_at));
    tokens->add(entry);
  }
  root.set("tokens", tokens);

  Array::Ptr history = new Array;
  for (const state::RunRecord& run : s.history) {
    Object::Ptr entry = new_object();
    entry->set("id", static_cast<Poco::Int64>(run.id));
    entry->set("trigger", run.trigger);
    entry->set("command", run.command);
    entry->set("started_at", format_rfc3339(run.started_at));
    entry->set("finished_at", optional_time(run.finished_at));
    entry->set("result", std::string(state::to_string(run.result)));
    entry->set("counts", counts_object(run.to_add, run.to_change, run.to_destroy, run.to_rotate));
    entry->set("failed", run.failed);
    entry->set("api_calls", run.api_calls);
    entry->set("duration_seconds", run.duration_seconds);
    entry->set("message", run.message);
    history->add(entry);
  }
  root.set("history", history);

  std::ostringstream out;
  root.stringify(out, 2);
  out << "\n";
  return out.str();
}

}  // namespace tokend::daemon
