#include "apply/recovery.h"

#include <algorithm>
#include <map>
#include <set>

namespace tokend::apply {

state::ResourceRecord record_from_token(const std::string& key, const astro::ApiToken& token,
                                        const std::string& sink_path,
                                        const std::string& sink_sha256) {
  state::ResourceRecord r;
  r.key = key;
  r.id = token.id;
  r.attrs = token.attrs();
  r.short_token = token.short_token;
  r.created_at = token.created_at;
  r.updated_at = token.updated_at;
  r.start_at = token.start_at;
  r.end_at = token.end_at;
  r.last_rotated_at = token.last_rotated_at;
  r.sink_path = sink_path;
  r.sink_sha256 = sink_sha256;
  return r;
}

std::string deposed_key(const std::string& key, const std::string& token_id) {
  return key + "~" + token_id;
}

bool is_deposed_key(const std::string& key) { return key.find('~') != std::string::npos; }

const astro::ApiToken* find_created_token(const state::Intent& intent,
                                          const std::map<std::string, astro::ApiToken>& tokens,
                                          const std::set<std::string>& managed_ids) {
  const astro::ApiToken* match = nullptr;
  for (const auto& [id, token] : tokens) {
    if (managed_ids.count(id)) continue;
    if (token.name != intent.attrs.name || token.type != intent.attrs.type) continue;
    if (token.created_at + kIntentClockSkew < intent.started_at) continue;
    if (intent.settle_after > intent.started_at &&
        token.created_at > intent.settle_after + kIntentClockSkew)
      continue;
    if (match == nullptr ||
        std::tie(token.created_at, token.id) < std::tie(match->created_at, match->id))
      match = &token;
  }
  return match;
}

bool made_by_create(const state::Intent& intent, const astro::ApiToken& token) {
  if (intent.kind != state::IntentKind::Create || intent.settle_after <= intent.started_at)
    return false;
  if (!intent.made_token_id.empty() && token.id == intent.made_token_id) return false;
  if (token.name != intent.attrs.name || token.type != intent.attrs.type) return false;
  if (token.created_at + kIntentClockSkew < intent.started_at ||
      token.created_at > intent.settle_after + kIntentClockSkew)
    return false;
  if (token.roles.empty()) return false;
  const RoleSet wanted = normalize_roles(intent.attrs.roles);
  for (const Role& role : token.roles)
    if (std::find(wanted.begin(), wanted.end(), role) == wanted.end()) return false;
  return true;
}

namespace {

// The late-landing rule of resolve_intents, after the pending intents were
// settled: `managed_ids` and `held_keys` say what state holds once
// recovery.outcomes are committed.
void find_late_creates(const std::vector<const state::Intent*>& creates,
                       const plan::Observed& observed, std::set<std::string>& managed_ids,
                       std::set<std::string>& held_keys, Recovery& recovery) {
  std::vector<const astro::ApiToken*> candidates;
  for (const auto& [id, token] : observed.tokens)
    if (!managed_ids.count(id)) candidates.push_back(&token);
  std::sort(candidates.begin(), candidates.end(), [](const auto* a, const auto* b) {
    return std::tie(a->created_at, a->id) < std::tie(b->created_at, b->id);
  });
  for (const astro::ApiToken* token : candidates) {
    for (const state::Intent* intent : creates) {
      if (!made_by_create(*intent, *token)) continue;
      managed_ids.insert(token->id);
      const std::string address = address_for_key(intent->key);
      if (!held_keys.count(intent->key)) {
        state::ResourceRecord adopted =
            record_from_token(intent->key, *token, intent->sink_path, "");
        adopted.rotate_pending = true;
        recovery.outcomes.push_back({intent->key, adopted, std::nullopt});
        held_keys.insert(intent->key);
        recovery.late.push_back({intent->key, token->id, true});
        recovery.notes.push_back("token " + token->id + " was made for " + address +
                                 " by a create that took effect late; it is adopted and its "
                                 "value will be rotated");
      } else {
        state::ResourceRecord orphan =
            record_from_token(deposed_key(intent->key, token->id), *token, "", "");
        recovery.outcomes.push_back({orphan.key, orphan, std::nullopt});
        recovery.late.push_back({intent->key, token->id, false});
        recovery.notes.push_back("token " + token->id + " was made for " + address +
                                 " by a create that took effect late, and " + address +
                                 " has its token; it is kept as " + orphan.address() +
                                 " and will be destroyed");
      }
      break;
    }
  }
}

}  // namespace

Recovery resolve_intents(const std::vector<state::Intent>& intents,
                         const std::vector<state::ResourceRecord>& prior,
                         const plan::Observed& observed, const std::vector<state::Intent>& recent) {
  Recovery recovery;
  // With no intent and no recent create, there is nothing to resolve and no
  // late token to recognise.
  if (!observed.refreshed || (intents.empty() && recent.empty())) return recovery;

  std::set<std::string> managed_ids;
  std::map<std::string, const state::ResourceRecord*> by_key;
  for (const auto& r : prior) {
    managed_ids.insert(r.id);
    by_key[r.key] = &r;
  }

  // Oldest intents first, so that two creates of the same name adopt in order.
  std::vector<const state::Intent*> ordered;
  for (const auto& intent : intents) ordered.push_back(&intent);
  std::sort(ordered.begin(), ordered.end(), [](const auto* a, const auto* b) {
    return std::tie(a->started_at, a->id) < std::tie(b->started_at, b->id);
  });

  for (const state::Intent* intent : ordered) {
    if (intent->kind == state::IntentKind::Create) {
      const astro::ApiToken* match = find_created_token(*intent, observed.tokens, managed_ids);
      if (match == nullptr && !observed.complete) {
        recovery.unsettled.push_back(*intent);
        recovery.notes.push_back("create of " + address_for_key(intent->key) +
                                 " by an interrupted run may have taken effect, but the listing "
                                 "of tokens was incomplete; apply looks again before creating");
        continue;
      }
      if (match == nullptr && observed.listed_at < intent->settle_after) {
        recovery.unsettled.push_back(*intent);
        recovery.notes.push_back("create of " + address_for_key(intent->key) +
                                 " by an earlier run may still take effect (its request may "
                                 "reach the API until " +
                                 format_rfc3339(intent->settle_after) +
                                 "); nothing is created for it before a listing taken after then");
        continue;
      }
      if (match == nullptr) {
        recovery.dropped.push_back(intent->id);
        recovery.notes.push_back("create of " + address_for_key(intent->key) +
                                 " never took effect; it will be planned again");
        continue;
      }
      managed_ids.insert(match->id);
      state::ResourceRecord adopted = record_from_token(intent->key, *match, intent->sink_path, "");
      adopted.rotate_pending = true;
      recovery.outcomes.push_back({intent->key, adopted, intent->id});
      recovery.notes.push_back("adopted token " + match->id + " created for " +
                               address_for_key(intent->key) +
                               " by an interrupted run; its value will be rotated");
      if (auto row = by_key.find(intent->key);
          row != by_key.end() && row->second->id != match->id) {
        state::ResourceRecord deposed = *row->second;
        deposed.key = deposed_key(intent->key, deposed.id);
        recovery.outcomes.push_back({deposed.key, deposed, std::nullopt});
        recovery.notes.push_back("token " + deposed.id +
                                 " replaced by an interrupted run is kept as " +
                                 address_for_key(deposed.key) + " and will be destroyed");
      }
    } else {
      if (observed.listed_at < intent->settle_after) {
        recovery.notes.push_back("rotation of " + address_for_key(intent->key) +
                                 " by an earlier run may still take effect; a listing after " +
                                 format_rfc3339(intent->settle_after) + " settles it");
        continue;
      }
      auto it = observed.tokens.find(intent->token_id);
      auto row = by_key.find(intent->key);
      if (it == observed.tokens.end() || row == by_key.end() ||
          row->second->id != intent->token_id) {
        recovery.dropped.push_back(intent->id);
        recovery.notes.push_back("rotation of " + address_for_key(intent->key) +
                                 " was interrupted and the token is no longer managed");
        continue;
      }
      state::ResourceRecord updated = *row->second;
      updated.rotate_pending = true;
      recovery.outcomes.push_back({intent->key, updated, intent->id});
      recovery.notes.push_back("rotation of " + address_for_key(intent->key) +
                               " was interrupted; it will be rotated again");
    }
  }

  std::set<std::string> held_keys;
  for (const auto& r : prior) held_keys.insert(r.key);
  for (const auto& outcome : recovery.outcomes) {
    if (outcome.resource) {
      held_keys.insert(outcome.key);
      managed_ids.insert(outcome.resource->id);
    }
  }
  std::vector<const state::Intent*> creates;
  for (const state::Intent* intent : ordered)
    if (intent->kind == state::IntentKind::Create) creates.push_back(intent);
  for (const state::Intent& intent : recent) creates.push_back(&intent);
  find_late_creates(creates, observed, managed_ids, held_keys, recovery);
  return recovery;
}

std::vector<state::ResourceRecord> apply_recovery(std::vector<state::ResourceRecord> prior,
                                                  const Recovery& recovery) {
  for (const auto& outcome : recovery.outcomes) {
    auto it = std::find_if(prior.begin(), prior.end(),
                           [&](const auto& r) { return r.key == outcome.key; });
    if (outcome.resource) {
      if (it != prior.end())
        *it = *outcome.resource;
      else
        prior.push_back(*outcome.resource);
    } else if (it != prior.end()) {
      prior.erase(it);
    }
  }
  const auto by_key = [](const auto& a, const auto& b) { return a.key < b.key; };
  if (!std::is_sorted(prior.begin(), prior.end(), by_key))
    std::sort(prior.begin(), prior.end(), by_key);
  return prior;
}

}  // namespace tokend::apply
