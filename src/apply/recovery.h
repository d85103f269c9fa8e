#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "plan/plan.h"
#include "state/store.h"

namespace tokend::apply {

// How pending intents (journalled before a create or rotate whose outcome was
// never recorded: a crash, or an Ambiguous answer) are settled. Pure: decides
// from the intents, the recorded state and the refreshed remote tokens.
struct Recovery {
  std::vector<state::Outcome> outcomes;  // adoptions, each resolving its intent
  std::vector<int64_t> dropped;          // intents that came to nothing
  // Create intents that neither found their token nor may be dropped yet:
  // they stay pending, and apply settles them before it creates for their
  // key (see apply_plan).
  std::vector<state::Intent> unsettled;
  std::vector<std::string> notes;  // one line per decision, for logs
  // Tokens a create made that landed after its intent was settled, or beside
  // the token it adopted (late-landing creates): each is adopted under the
  // intent's key when state has no token for it, and otherwise recorded
  // under its deposed key for the plan to destroy. Their outcomes are in
  // `outcomes` (resolving nothing).
  struct LateToken {
    std::string key;  // the intent's key
    std::string token_id;
    bool adopted = false;  // false: kept under deposed_key(key, token_id), to be destroyed
    std::string address() const { return address_for_key(key); }
  };
  std::vector<LateToken> late;
};

// How far before an intent's start a token's createdAt may lie and still be
// the intent's token (clock skew between this host and the API).
inline constexpr std::chrono::seconds kIntentClockSkew{120};

// The key under which a replaced token that still exists is kept until it is
// deleted ("deposed", as Terraform calls it): "<key>~<token id>". No spec can
// use it (spec keys cannot contain '~'), so the next plan deletes it.
std::string deposed_key(const std::string& key, const std::string& token_id);
bool is_deposed_key(const std::string& key);

// The token a create intent made, if the API shows one: of `tokens`, those
// with the intent's name and type, created no earlier than the intent (minus
// kIntentClockSkew) and, when the intent has a settle_after, no later than it
// (plus kIntentClockSkew), whose id is not in `managed_ids`; the earliest
// (then the smallest id) wins. nullptr when there is none.
const astro::ApiToken* find_created_token(const state::Intent& intent,
                                          const std::map<std::string, astro::ApiToken>& tokens,
                                          const std::set<std::string>& managed_ids);

// Whether `token` may have been made by the create of `intent`, for the
// late-landing rule: the intent has a settle_after; same name and type; a
// role set that is not empty and within the intent's (a create sends the
// primary role, the others follow); created within [started_at -
// kIntentClockSkew, settle_after + kIntentClockSkew]; not the token the
// intent is known to have made. A token made by a person with the same name
// at another time never matches.
bool made_by_create(const state::Intent& intent, const astro::ApiToken& token);

// Settles pending intents, and finds late-landing creates.
//
// Create intent: the token find_created_token picks is adopted under the
// intent's key — with rotate_pending set, since its value was never
// delivered. When the key still holds another token (an interrupted
// create_before_destroy replacement), that token moves to its deposed key:
// the adoption comes first in `outcomes`, the deposed row right after it, and
// the two must be committed together in that order (StateStore::
// record_outcomes), since a token id may be held by one key at a time. None:
// when observed.complete and the listing began at or after the intent's
// settle_after, the intent is dropped (the create never happened; the plan
// creates again); otherwise the token may be one the listing missed, or one
// whose request has not reached the API yet, so the intent is unsettled.
// Rotate intent: if the token still exists it may have a new value nobody
// has, so its row gets rotate_pending; the intent is resolved either way.
// When the listing began before the intent's settle_after, the intent stays
// pending (the rotation may still land).
// Late-landing creates: then every observed token that no row manages and
// that made_by_create matches for one of the create intents (`intents`, then
// `recent`: the resolved creates StateStore::recent_creates keeps) is one
// astro-tokend made: it is adopted under the intent's key (rotate_pending,
// the intent's sink) when no row holds that key, and otherwise recorded
// under its deposed key (no sink) so that the plan destroys it. Each is
// listed in Recovery::late and noted.
// Requires observed.refreshed; with no refresh every intent stays pending.
Recovery resolve_intents(const std::vector<state::Intent>& intents,
                         const std::vector<state::ResourceRecord>& prior,
                         const plan::Observed& observed,
                         const std::vector<state::Intent>& recent = {});

// `prior` with `recovery`'s outcomes applied (what state will hold once they
// are committed). Keeps `prior` sorted by key.
std::vector<state::ResourceRecord> apply_recovery(std::vector<state::ResourceRecord> prior,
                                                  const Recovery& recovery);

// A state row for `token`, managed under `key`, delivered to `sink_path`
// with fingerprint `sink_sha256` ("" when no value was delivered).
state::ResourceRecord record_from_token(const std::string& key, const astro::ApiToken& token,
                                        const std::string& sink_path,
                                        const std::string& sink_sha256);

}  // namespace tokend::apply
