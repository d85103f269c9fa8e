// Hostile answers and hostile files never cost unbounded memory or time, and
// never write anything: an endless body, a huge Content-Length, a trickling
// answer, a page repeated forever, `apply /dev/zero`. Runs the real binary
// against astro-api-sim behind the project's fault-injecting proxy and reads
// the child's peak resident set from the kernel (wait4).
#include <catch2/catch.hpp>

#include "cli/fixture.h"
#include "support/fault_proxy.h"

using namespace tokend;
using namespace tokend::testing;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

// Far above what astro-tokend needs for a small plan, far below an endless body.
#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer keeps freed memory in quarantine (256 MiB by default).
constexpr long kRssBoundKb = 512 * 1024;
#else
constexpr long kRssBoundKb = 192 * 1024;
#endif

// What a failed command must leave as it was.
struct Untouched {
  int64_t serial = 0;
  size_t rows = 0;
  size_t tokens = 0;
};

Untouched look(const CliWorkspace& ws) {
  auto store = ws.open_state();
  return Untouched{store->serial(), store->resources()->size(), ws.control().tokens().size()};
}

void check_untouched(const CliWorkspace& ws, const Untouched& before) {
  const Untouched after = look(ws);
  CHECK(after.serial == before.serial);
  CHECK(after.rows == before.rows);
  CHECK(after.tokens == before.tokens);
  const RequestStats stats = ws.control().requests();
  for (const char* write : {"CreateApiToken", "UpdateApiToken", "UpdateApiTokenRoles",
                            "RotateApiToken", "DeleteApiToken"})
    CHECK(stats.count(write) == 0);
}

// Replaces `from` (which must be there) in the workspace's config.
void edit_config(const CliWorkspace& ws, const std::string& from, const std::string& to) {
  std::string config = read_file(ws.config_path());
  const size_t at = config.find(from);
  REQUIRE(at != std::string::npos);
  config.replace(at, from.size(), to);
  write_file(ws.config_path(), config);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST_CASE("an endless listing body fails at max_response_bytes with bounded memory",
          "[integration][hostile]") {
  CliWorkspace ws;
  seed_managed_fleet(ws, 5, 1);
  ws.write_spec("new.toml", workspace_spec("fresh", "fresh token"));  // a create, if it got so far
  FaultProxy proxy(ws.sim().base_url());
  ws.use_api_url(proxy.url());
  // The cap as configured, 8 MiB here: the config's key is honoured.
  edit_config(ws, "[astro]\n", "[astro]\nmax_response_bytes = 8388608\n");
  const bool huge_length = GENERATE(false, true);
  proxy.set_rules({huge_length ? endless_body_huge_length(token_listing(ws.sim().org_id()))
                               : endless_body(token_listing(ws.sim().org_id()))});
  const Untouched before = look(ws);
  ws.control().reset_requests();

  const auto start = std::chrono::steady_clock::now();
  ProcessResult applied = ws.tokend({"apply", "--auto-approve"});
  INFO((huge_length ? "Content-Length 2^40" : "chunked") << "\n" << applied.out << applied.err);
  CHECK(applied.exit_code == 1);
  CHECK_THAT(applied.err, Catch::Contains("larger than max_response_bytes (8388608 bytes)"));
  CHECK(applied.max_rss_kb > 0);
  CHECK(applied.max_rss_kb < kRssBoundKb);
  CHECK(seconds_since(start) < 20);
  // Not retried: one listing request, and the proxy wrote little more than the cap.
  // A Content-Length above the cap is refused before the body is read: what the
  // proxy got rid of is only what loopback's socket buffers took (a few MiB
  // under autotuning), less than the cap.
  CHECK(proxy.request_count("/v1/organizations/" + ws.sim().org_id() + "/tokens") == 1);
  if (huge_length)
    CHECK(proxy.endless_bytes_sent() < 8u * 1024 * 1024);
  else
    CHECK(proxy.endless_bytes_sent() < 64u * 1024 * 1024);
  check_untouched(ws, before);
}

TEST_CASE("a trickling answer fails at the request timeout, not per read",
          "[integration][hostile]") {
  CliWorkspace ws;
  seed_managed_fleet(ws, 5, 1);
  FaultProxy proxy(ws.sim().base_url());
  ws.use_api_url(proxy.url());
  // A byte every 100 ms: every read succeeds long before the timeout; the
  // whole answer (several KB) would take minutes, its headers alone seconds.
  // A body still arriving at the deadline is not asked for again; headers
  // that never came whole are "no answer", retried like any timed-out GET.
  const bool headers_too = GENERATE(false, true);
  INFO((headers_too ? "status line and headers trickle too" : "the body trickles"));
  edit_config(ws, "timeout = \"10s\"", headers_too ? "timeout = \"1s\"" : "timeout = \"2s\"");
  const ProxyMatch listing = token_listing(ws.sim().org_id());
  proxy.set_rules({headers_too ? trickle_headers(listing, milliseconds(100))
                               : trickle(listing, milliseconds(100))});
  const Untouched before = look(ws);
  ws.control().reset_requests();

  const auto start = std::chrono::steady_clock::now();
  ProcessResult plan = ws.tokend({"plan"});
  const double took = seconds_since(start);
  INFO(plan.out << plan.err);
  CHECK(plan.exit_code == 1);
  const std::string listing_path = "/v1/organizations/" + ws.sim().org_id() + "/tokens";
  if (headers_too) {
    CHECK_THAT(plan.err, Catch::Contains("no answer within 1000ms (after 5 attempts)"));
    CHECK(proxy.request_count(listing_path) == 5);
    // Five deadlines of 1 s and the back-offs between them (each under 2 s).
    CHECK(took >= 4.9);
    CHECK(took < 5 + 8 + 2);
  } else {
    CHECK_THAT(plan.err, Catch::Contains("did not arrive whole within 2000ms"));
    CHECK(proxy.request_count(listing_path) == 1);
    CHECK(took >= 1.9);
    CHECK(took < 2 + 3);
  }
  check_untouched(ws, before);
}

TEST_CASE("a listing page repeated forever ends in bounded GETs and time",
          "[integration][hostile]") {
  CliWorkspace ws;
  seed_managed_fleet(ws, 5, 1);
  FaultProxy proxy(ws.sim().base_url());
  ws.use_api_url(proxy.url());
  // Every page is the first one-token page, and the API claims a billion
  // tokens: the offsets never reach totalCount.
  const ProxyMatch listing = token_listing(ws.sim().org_id());
  proxy.set_rules(
      {repeat_page(listing), short_pages(listing, 1), lie_total_count(listing, 1000000000)});
  const Untouched before = look(ws);
  ws.control().reset_requests();

  const auto start = std::chrono::steady_clock::now();
  ProcessResult applied = ws.tokend({"apply", "--auto-approve"});
  INFO(applied.out << applied.err);
  CHECK(applied.exit_code == 1);
  CHECK_THAT(applied.err, Catch::Contains("lists only tokens already listed"));
  CHECK(seconds_since(start) < 10);
  CHECK(proxy.request_count("/v1/organizations/" + ws.sim().org_id() + "/tokens") <= 3);
  check_untouched(ws, before);
}

TEST_CASE("a listing stops after totalCount / limit plus a few pages", "[integration][hostile]") {
  CliWorkspace ws;
  seed_managed_fleet(ws, 12, 1);
  FaultProxy proxy(ws.sim().base_url());
  ws.use_api_url(proxy.url());
  // One new token a page; the first page says totalCount 2, every later one
  // a billion: the listing may take 2 / 1 + 1 + 3 pages, then gives up.
  const ProxyMatch listing = token_listing(ws.sim().org_id());
  proxy.set_rules({short_pages(listing, 1), lie_total_count(listing, 1000000000),
                   lie_total_count(token_listing(ws.sim().org_id(), 1), 2)});
  const Untouched before = look(ws);
  ws.control().reset_requests();

  ProcessResult plan = ws.tokend({"plan"});
  INFO(plan.out << plan.err);
  CHECK(plan.exit_code == 1);
  CHECK_THAT(plan.err, Catch::Contains("gave up after 6 pages (totalCount 2)"));
  CHECK(proxy.request_count("/v1/organizations/" + ws.sim().org_id() + "/tokens") == 6);
  check_untouched(ws, before);
}

TEST_CASE("apply /dev/zero fails at once with bounded memory and writes nothing",
          "[integration][hostile]") {
  CliWorkspace ws;
  seed_managed_fleet(ws, 3, 1);
  const Untouched before = look(ws);
  ws.control().reset_requests();

  const auto start = std::chrono::steady_clock::now();
  ProcessResult applied = ws.tokend({"apply", "/dev/zero"});
  INFO(applied.out << applied.err);
  CHECK(applied.exit_code == 1);
  CHECK_THAT(applied.err, Catch::Contains("/dev/zero is larger than"));
  CHECK(applied.max_rss_kb < kRssBoundKb);
  CHECK(seconds_since(start) < 10);
  CHECK(ws.control().requests().total == 0);
  check_untouched(ws, before);
}
