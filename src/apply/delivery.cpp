#include "apply/delivery.h"

#include <cstdlib>

#include "spec/text.h"

namespace tokend::apply {

namespace {

constexpr const char* kHookPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr std::string_view kScrubbed = "(sensitive value)";

// Control characters other than newline and tab, and bytes of invalid
// UTF-8, as '?' (line by line, so that newlines stay).
std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const size_t end = text.find('\n');
    out += spec::printable_line(text.substr(0, end));
    if (end == std::string_view::npos) break;
    out += '\n';
    text.remove_prefix(end + 1);
  }
  return out;
}

}  // namespace

std::string_view to_string(DeliveryAction action) {
  switch (action) {
    case DeliveryAction::Create:
      return "create";
    case DeliveryAction::Rotate:
      return "rotate";
    case DeliveryAction::Deliver:
      return "deliver";
  }
  return "deliver";
}

Delivery delivery_of(const spec::TokenSpec& spec) {
  return Delivery{SinkTarget{spec.sink, spec.sink_mode, spec.sink_group}, spec.on_delivery};
}

std::string HookReport::describe(const std::string& program) const {
  return "delivery hook " + program + " (after " + std::string(to_string(action)) + ") " + status;
}

std::vector<std::pair<std::string, std::string>> hook_environment(const std::string& key,
                                                                  const std::string& token_id,
                                                                  const std::string& sink,
                                                                  DeliveryAction action) {
  std::vector<std::pair<std::string, std::string>> env{{"PATH", kHookPath}};
  if (const char* lang = std::getenv("LANG"); lang != nullptr && *lang != '\0')
    env.emplace_back("LANG", lang);
  env.emplace_back("ASTRO_TOKEND_ADDRESS", address_for_key(key));
  env.emplace_back("ASTRO_TOKEND_TOKEN_ID", token_id);
  env.emplace_back("ASTRO_TOKEND_SINK", sink);
  env.emplace_back("ASTRO_TOKEND_ACTION", std::string(to_string(action)));
  return env;
}

std::string scrub_hook_output(std::string output, const std::string& secret, bool truncated) {
  if (!secret.empty()) {
    for (size_t at = output.find(secret); at != std::string::npos;
         at = output.find(secret, at + kScrubbed.size()))
      output.replace(at, secret.size(), kScrubbed);
    if (truncated) {
      // The capture stopped somewhere: its last bytes may begin the value.
      for (size_t n = std::min(secret.size() - 1, output.size()); n > 0; --n) {
        if (output.compare(output.size() - n, n, secret, 0, n) == 0) {
          output.resize(output.size() - n);
          break;
        }
      }
    }
  }
  if (output.size() > kMaxHookOutputBytes || truncated) {
    output.resize(std::min(output.size(), kMaxHookOutputBytes));
    // Do not end inside a UTF-8 sequence.
    while (!output.empty() && (static_cast<unsigned char>(output.back()) & 0xC0) == 0x80)
      output.pop_back();
    if (!output.empty() && static_cast<unsigned char>(output.back()) >= 0xC0) output.pop_back();
    output += "…";
  }
  return printable(output);
}

HookReport run_hook(HookRunner& runner, Logger& logger, const std::vector<std::string>& hook,
                    std::chrono::milliseconds timeout, const std::string& key,
                    const std::string& token_id, const std::string& sink, DeliveryAction action,
                    const SecretValue& value) {
  HookCommand command;
  command.argv = hook;
  command.environment = hook_environment(key, token_id, sink, action);
  command.timeout = timeout;
  HookResult result = runner.run(command, value);

  HookReport report;
  report.key = key;
  report.action = action;
  report.ok = result.ok();
  report.status = result.describe();
  report.output = scrub_hook_output(std::move(result.output), value.reveal(), result.truncated);
  report.seconds = result.seconds;

  std::vector<LogField> fields{{"address", address_for_key(key)},
                               {"action", std::string(to_string(action))},
                               {"hook", hook.front()},
                               {"status", report.status}};
  if (!report.output.empty()) fields.emplace_back("output", report.output);
  if (report.ok)
    logger.log(LogLevel::Info, "delivery hook succeeded", fields);
  else
    logger.log(LogLevel::Error, "delivery hook failed; it runs again on the next run", fields);
  return report;
}

}  // namespace tokend::apply
