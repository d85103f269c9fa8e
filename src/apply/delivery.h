// Delivery hooks (product.md §4): what runs after a value reaches its sink,
// with which environment, and how its output is reported. Used by the
// engine; the process itself is behind the HookRunner seam (hook.h).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "apply/hook.h"
#include "apply/sink.h"
#include "spec/model.h"
#include "util/log.h"

namespace tokend::apply {

// Why a hook runs: the value was just created, just rotated, or is handed
// over again because an earlier run of the hook did not succeed.
enum class DeliveryAction { Create, Rotate, Deliver };
// "create", "rotate", "deliver" (ASTRO_TOKEND_ACTION).
std::string_view to_string(DeliveryAction action);

// Where a token's value goes and what runs after it arrives.
struct Delivery {
  SinkTarget target;
  std::vector<std::string> hook;  // empty: none
};
Delivery delivery_of(const spec::TokenSpec& spec);

// One run of a delivery hook, as reported (never holds the value).
struct HookReport {
  std::string key;
  DeliveryAction action = DeliveryAction::Create;
  bool ok = true;
  std::string status;  // "exited with status 0", "timed out after 30s and was killed", …
  std::string output;  // scrubbed and cut to kMaxHookOutputBytes, for the log
  double seconds = 0;

  std::string address() const { return address_for_key(key); }
  // "delivery hook /x (after rotate) exited with status 3": for errors and history.
  std::string describe(const std::string& program) const;
};

// The hook's whole environment: PATH (a fixed system path), LANG when this
// process has it, and ASTRO_TOKEND_ADDRESS, ASTRO_TOKEND_TOKEN_ID,
// ASTRO_TOKEND_SINK, ASTRO_TOKEND_ACTION. Nothing else of this process's
// environment (which may hold the API token) reaches it.
std::vector<std::pair<std::string, std::string>> hook_environment(const std::string& key,
                                                                  const std::string& token_id,
                                                                  const std::string& sink,
                                                                  DeliveryAction action);

// `output` fit for a log line: every occurrence of `secret` replaced by
// "(sensitive value)"; when `truncated`, a tail that could be the start of
// `secret` dropped too; then cut to kMaxHookOutputBytes (marked "…"), with
// control characters other than newline and tab, and invalid UTF-8, as '?'.
std::string scrub_hook_output(std::string output, const std::string& secret, bool truncated);

// Runs `hook` for `value`, just delivered to `sink` for token `token_id` of
// `key`, and logs the outcome: info "delivery hook succeeded", or error
// "delivery hook failed" with the address, action and exit status; the
// output (scrubbed) in its own field when there is any. Never logs the value.
HookReport run_hook(HookRunner& runner, Logger& logger, const std::vector<std::string>& hook,
                    std::chrono::milliseconds timeout, const std::string& key,
                    const std::string& token_id, const std::string& sink, DeliveryAction action,
                    const SecretValue& value);

}  // namespace tokend::apply
