// The human view of a Plan, in Terraform's phrasing (product.md §3): drift
// ("Note: Objects have changed outside of astro-tokend"), the legend of the
// symbols in use, one block per change, and a last line
// "Plan: A to add, C to change, D to destroy, R to rotate." or
// "No changes. Your tokens match the configuration.".
//
// A plan with errors renders its drift and then one "Error: …" line per
// error, and nothing else (like Terraform, which prints no plan when planning
// failed). Pure: returns text, writes nothing. Never prints a secret (a Plan
// holds none; the token attribute shows as "(sensitive value)").
#pragma once

#include <string>

#include "plan/plan.h"

namespace tokend::plan {

struct RenderOptions {
  // ANSI colours (green create, yellow update, red destroy, cyan rotate, bold
  // headings). The caller decides: a terminal, no --no-color, no NO_COLOR.
  bool color = false;
  // ASCII only: "R" as the rotate symbol and "-" rules. false: "↻" and "─".
  bool ascii_symbols = true;

  // Colour and Unicode symbols when `color`, plain ASCII otherwise (the
  // product's rule: "↻", or "R" with --no-color).
  static RenderOptions for_terminal(bool color) { return RenderOptions{color, !color}; }
};

std::string render_text(const Plan& plan, const RenderOptions& options = {});

// Why a change rotates, as the text after "because": e.g.
// "it expired at 2026-03-01T00:00:00Z". "" when it does not rotate.
std::string describe_rotation(const Change& change);

}  // namespace tokend::plan
