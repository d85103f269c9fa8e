// Delivery to consumers against astro-api-sim, through the real astro-tokend
// binary (run as root, as CI does): sink mode and group, delivery hooks
// (/bin/sh scripts that write what they were given where the test reads it),
// hooks that fail and run again without a second create or rotate, hooks
// killed at their timeout, and a sink that the running user cannot read.
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <set>
#include <sstream>
#include <thread>

#include "integration/apply_fixture.h"
#include "util/hash.h"

using namespace tokend;
using namespace tokend::testing;
namespace fs = std::filesystem;

namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

std::string ci_spec(const std::string& extra = "") {
  return "[api_token.ci]\nname = \"ci\"\ntype = \"WORKSPACE\"\nrole = \"WORKSPACE_OWNER\"\n"
         "roles = [{ role = \"WORKSPACE_OWNER\", entity_id = \"" +
         std::string(kSimWorkspaceId) + "\", entity_type = \"WORKSPACE\" }]\n" + extra;
}

// A hook script in `dir` that writes its stdin, argv and environment to
// OUT/<action>.stdin, .argv and .env (NUL separators as newlines), after
// running `before` (shell text; may exit).
std::string write_hook(const TempDir& dir, const std::string& name,
                       const std::string& before = "") {
  const std::string path = dir.file(name);
  write_file(path, "#!/bin/sh\nout=\"$1\"\n" + before +
                       "\ncat > \"$out/$ASTRO_TOKEND_ACTION.stdin\"\n"
                       "tr '\\0' '\\n' < /proc/$$/cmdline > \"$out/$ASTRO_TOKEND_ACTION.argv\"\n"
                       "tr '\\0' '\\n' < /proc/$$/environ > \"$out/$ASTRO_TOKEND_ACTION.env\"\n");
  chmod(path.c_str(), 0755);
  return path;
}

std::set<std::string> lines(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.insert(line);
  return out;
}

// Variable names in an environment listing (NAME=value lines).
std::set<std::string> names(const std::string& env) {
  std::set<std::string> out;
  for (const std::string& line : lines(env)) out.insert(line.substr(0, line.find('=')));
  return out;
}

gid_t gid_of(const std::string& group) {
  struct group* entry = getgrnam(group.c_str());
  REQUIRE(entry != nullptr);
  return entry->gr_gid;
}

struct stat stat_of(const std::string& path) {
  struct stat info {};
  REQUIRE(stat(path.c_str(), &info) == 0);
  return info;
}

std::vector<std::string> token_writes(const ApplyWorkspace& ws) {
  return writes(ws.control().requests());
}

}  // namespace

TEST_CASE("sinks are made with their mode and group", "[integration][delivery]") {
  INFO("runs as root, as CI does, so that it may give sinks the group daemon");
  REQUIRE(geteuid() == 0);
  ApplyWorkspace ws;
  ws.write_config("", "sink_mode = \"0440\"\n");  // the [secrets] default
  ws.write_spec("ci.toml", ci_spec("sink_mode = \"0640\"\nsink_group = \"daemon\"\n") +
                               "[api_token.other]\nname = \"other\"\ntype = \"WORKSPACE\"\n"
                               "role = \"WORKSPACE_OWNER\"\nroles = [{ role = \"WORKSPACE_OWNER\", "
                               "entity_id = \"" +
                               std::string(kSimWorkspaceId) +
                               "\", entity_type = \"WORKSPACE\" }]\n"
                               "sink = \"grouped/other.token\"\nsink_group = \"daemon\"\n");
  REQUIRE_EXIT(ws.apply(), 0);
  const struct stat ci = stat_of(ws.sink_for("ci"));
  CHECK((ci.st_mode & 07777) == 0640);
  CHECK(ci.st_gid == gid_of("daemon"));
  // The [secrets] mode, in a directory made for the group so that its
  // members can reach the file.
  const struct stat other = stat_of(ws.secrets_dir() + "/grouped/other.token");
  CHECK((other.st_mode & 07777) == 0440);
  CHECK(other.st_gid == gid_of("daemon"));
  const struct stat grouped = stat_of(ws.secrets_dir() + "/grouped");
  CHECK((grouped.st_mode & 07777) == 0750);
  CHECK(grouped.st_gid == gid_of("daemon"));
  // A rotation keeps both.
  write_file(ws.sink_for("ci"), "overwritten");
  REQUIRE_EXIT(ws.apply(), 0);
  CHECK(read_file(ws.sink_for("ci")) != "overwritten");
  CHECK((stat_of(ws.sink_for("ci")).st_mode & 07777) == 0640);
  CHECK(stat_of(ws.sink_for("ci")).st_gid == gid_of("daemon"));
}

TEST_CASE("a hook gets the value on stdin only - its id and address in a clean environment",
          "[integration][delivery]") {
  ApplyWorkspace ws;
  TempDir hooks;
  const std::string hook = write_hook(hooks, "hook.sh");
  ws.write_spec("ci.toml", ci_spec("on_delivery = [\"" + hook + "\", \"" + hooks.path() + "\"]\n"));
  REQUIRE_EXIT(ws.apply(), 0);

  const state::ResourceRecord row = ws.row("ci");
  const std::string value = read_file(row.sink_path);
  REQUIRE_FALSE(value.empty());
  CHECK(read_file(hooks.file("create.stdin")) == value);
  CHECK_FALSE(row.delivery_pending);

  const std::string argv = read_file(hooks.file("create.argv"));
  CHECK(argv == "/bin/sh\n" + hook + "\n" + hooks.path() + "\n");
  const std::string env = read_file(hooks.file("create.env"));
  CHECK(argv.find(value) == std::string::npos);
  CHECK(env.find(value) == std::string::npos);
  const std::set<std::string> vars = lines(env);
  CHECK(vars.count("ASTRO_TOKEND_ADDRESS=astro_api_token.ci"));
  CHECK(vars.count("ASTRO_TOKEND_TOKEN_ID=" + row.id));
  CHECK(vars.count("ASTRO_TOKEND_SINK=" + row.sink_path));
  CHECK(vars.count("ASTRO_TOKEND_ACTION=create"));
  // Nothing of astro-tokend's own environment (which holds the API token).
  CHECK(env.find(ws.sim().bearer_token()) == std::string::npos);
  const std::set<std::string> allowed{"PATH",
                                      "LANG",
                                      "PWD",  // the shell's own
                                      "ASTRO_TOKEND_ADDRESS",
                                      "ASTRO_TOKEND_TOKEN_ID",
                                      "ASTRO_TOKEND_SINK",
                                      "ASTRO_TOKEND_ACTION"};
  for (const std::string& name : names(env)) {
    INFO(name);
    CHECK(allowed.count(name));
  }
  CHECK(ws.transcript().find(value) == std::string::npos);
}

TEST_CASE("after a rotation the delivery hook gets the new value", "[integration][delivery]") {
  ApplyWorkspace ws;
  TempDir hooks;
  const std::string hook = write_hook(hooks, "hook.sh");
  ws.write_spec("ci.toml", ci_spec("on_delivery = [\"" + hook + "\", \"" + hooks.path() + "\"]\n"));
  REQUIRE_EXIT(ws.apply(), 0);
  const std::string first = read_file(ws.sink_for("ci"));

  fs::remove(ws.sink_for("ci"));  // the plan rotates a token whose sink is missing
  ProcessResult rotated = ws.apply();
  REQUIRE_EXIT(rotated, 0);
  CHECK(rotated.out.find("astro_api_token.ci: Delivery hook complete after ") != std::string::npos);
  const std::string second = read_file(ws.sink_for("ci"));
  CHECK(second != first);
  CHECK(read_file(hooks.file("rotate.stdin")) == second);
  CHECK(lines(read_file(hooks.file("rotate.env"))).count("ASTRO_TOKEND_ACTION=rotate"));
  CHECK(ws.transcript().find(first) == std::string::npos);
  CHECK(ws.transcript().find(second) == std::string::npos);
}

TEST_CASE("a hook that fails once runs again on the next run - with no second create or rotate",
          "[integration][delivery]") {
  ApplyWorkspace ws;
  TempDir hooks;
  // Fails the first time, echoing the value it was given (which must never
  // reach the log), then succeeds.
  const std::string hook =
      write_hook(hooks, "hook.sh",
                 "if [ ! -e \"$out/failed-once\" ]; then touch \"$out/failed-once\"; "
                 "echo \"consumer rejected $(cat)\"; exit 3; fi");
  ws.write_spec("ci.toml", ci_spec("on_delivery = [\"" + hook + "\", \"" + hooks.path() + "\"]\n"));

  ProcessResult first = ws.apply();
  REQUIRE_EXIT(first, 1);
  const std::string value = read_file(ws.sink_for("ci"));
  CHECK(first.err.find("astro_api_token.ci: the delivery hook (after create) exited with status 3; "
                       "it runs again on the next apply or daemon cycle") != std::string::npos);
  CHECK(first.err.find("consumer rejected (sensitive value)") != std::string::npos);
  CHECK(first.out.find("Apply complete! Resources: 1 added") != std::string::npos);
  CHECK(ws.row("ci").delivery_pending);
  CHECK(token_writes(ws) == std::vector<std::string>{"CreateApiToken"});

  // plan says so; the next run hands the same value over, and writes nothing.
  ProcessResult planned = ws.tokend({"plan"});
  REQUIRE_EXIT(planned, 0);
  CHECK(planned.out.find("No changes.") != std::string::npos);
  CHECK(planned.out.find("runs again on apply:\n  astro_api_token.ci\n") != std::string::npos);
  ws.control().reset_requests();
  ProcessResult second = ws.apply();
  REQUIRE_EXIT(second, 0);
  CHECK(second.out.find("astro_api_token.ci: Delivery hook complete after ") != std::string::npos);
  CHECK(token_writes(ws).empty());
  CHECK(read_file(hooks.file("deliver.stdin")) == value);
  const std::set<std::string> env = lines(read_file(hooks.file("deliver.env")));
  CHECK(env.count("ASTRO_TOKEND_ACTION=deliver"));
  CHECK(env.count("ASTRO_TOKEND_TOKEN_ID=" + ws.row("ci").id));
  CHECK_FALSE(ws.row("ci").delivery_pending);

  // History shows the failed hook and its second run.
  ProcessResult history = ws.tokend({"history", "--json"});
  REQUIRE_EXIT(history, 0);
  CHECK(history.out.find("\"action\": \"deliver\"") != std::string::npos);
  CHECK(history.out.find("delivery hook " + hook + " (after create) exited with status 3") !=
        std::string::npos);

  // A third run has nothing left to do.
  ws.control().reset_requests();
  REQUIRE_EXIT(ws.apply(), 0);
  CHECK(token_writes(ws).empty());
  CHECK(ws.transcript().find(value) == std::string::npos);
}

TEST_CASE("a hook that outlives hook_timeout is killed with its process group",
          "[integration][delivery]") {
  ApplyWorkspace ws;
  TempDir hooks;
  const std::string hook =
      write_hook(hooks, "hook.sh", "sleep 600 & echo $! > \"$out/child\"; wait");
  ws.write_config("", "hook_timeout = \"2s\"\n");
  ws.write_spec("ci.toml", ci_spec("on_delivery = [\"" + hook + "\", \"" + hooks.path() + "\"]\n"));
  const auto started = std::chrono::steady_clock::now();
  ProcessResult applied = ws.apply();
  const auto took = std::chrono::steady_clock::now() - started;
  REQUIRE_EXIT(applied, 1);
  CHECK(applied.err.find("the delivery hook (after create) timed out after 2s and was killed") !=
        std::string::npos);
  CHECK(took < std::chrono::seconds(100));  // far below the sleep; generous for a loaded machine
  const int child = std::stoi(read_file(hooks.file("child")));
  bool gone = false;
  for (int i = 0; i < 500 && !gone; ++i) {  // the kernel reaps asynchronously; bounded
    const std::string stat_path = "/proc/" + std::to_string(child) + "/stat";
    std::error_code ec;
    gone = !fs::exists(stat_path, ec);
    if (!gone) {
      const std::string stat = read_file(stat_path);
      const size_t paren = stat.rfind(')');
      gone = paren != std::string::npos && (stat[paren + 2] == 'Z' || stat[paren + 2] == 'X');
    }
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(gone);
  if (!gone) kill(child, SIGKILL);
  CHECK(ws.row("ci").delivery_pending);
}

TEST_CASE("a sink the running user cannot read is reported - and the token is not rotated",
          "[integration][delivery]") {
  INFO("runs as root, as CI does, to act as two users");
  REQUIRE(geteuid() == 0);
  ApplyWorkspace ws;
  ws.write_spec("ci.toml", ci_spec());
  // Everything belongs to nobody, who runs astro-tokend here …
  const auto as_nobody = [&ws](const std::vector<std::string>& args) {
    std::vector<std::string> argv{"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                                  "--clear-groups",   TOKEND_BIN,      "-c",
                                  ws.config_path()};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult result = run_process(argv, ws.run_options());
    ws.keep_output(result.out + result.err);
    return result;
  };
  for (const auto& entry : fs::recursive_directory_iterator(ws.dir().path()))
    REQUIRE(lchown(entry.path().c_str(), kNobody, kNogroup) == 0);
  REQUIRE(chown(ws.dir().path().c_str(), kNobody, kNogroup) == 0);
  REQUIRE_EXIT(as_nobody({"apply", "--auto-approve"}), 0);
  const state::ResourceRecord before = ws.row("ci");
  const std::string value = read_file(before.sink_path);

  // … until root leaves the sink readable by root alone (an apply by hand).
  REQUIRE(chown(before.sink_path.c_str(), 0, 0) == 0);
  REQUIRE(chmod(before.sink_path.c_str(), 0600) == 0);
  ws.control().reset_requests();
  ProcessResult planned = as_nobody({"plan"});
  REQUIRE_EXIT(planned, 1);
  const std::string error = "astro_api_token.ci: cannot read sink " + before.sink_path +
                            ": Permission denied; the token is held back: it is not rotated "
                            "while its sink cannot be read";
  CHECK(planned.err.find(error) != std::string::npos);
  CHECK(planned.out.find("No changes.") != std::string::npos);

  ProcessResult applied = as_nobody({"apply", "--auto-approve"});
  REQUIRE_EXIT(applied, 1);
  CHECK(applied.err.find(error) != std::string::npos);
  CHECK(token_writes(ws).empty());
  CHECK(read_file(before.sink_path) == value);
  CHECK(ws.row("ci").sink_sha256 == before.sink_sha256);
  CHECK(ws.row("ci").start_at == before.start_at);

  // The daemon: the same error, counted in history, and still no rotation.
  ProcessResult cycle = as_nobody({"run", "--once"});
  CHECK(cycle.exit_code == 1);
  CHECK(cycle.err.find("cannot read sink") != std::string::npos);
  CHECK(token_writes(ws).empty());
  ProcessResult history = as_nobody({"history", "--json"});
  REQUIRE_EXIT(history, 0);
  CHECK(history.out.find("\"action\": \"hold\"") != std::string::npos);
  CHECK(ws.transcript().find(value) == std::string::npos);
}

TEST_CASE("validate says when the user loading the specs may not give sinks their group",
          "[integration][delivery]") {
  INFO("runs as root, as CI does, to validate as another user");
  REQUIRE(geteuid() == 0);
  TempDir dir;
  write_file(dir.file("tokens.d/ci.toml"), ci_spec("sink_group = \"daemon\"\n"));
  write_file(dir.file("astro-tokend.toml"),
             "[astro]\norganization_id = \"clx42kkcm01fo01o06agtmshg\"\n[specs]\npaths = [\"" +
                 dir.file("tokens.d") + "\"]\n[state]\npath = \"" + dir.file("state.db") +
                 "\"\n[secrets]\ndir = \"" + dir.file("tokens") + "\"\n");
  for (const auto& entry : fs::recursive_directory_iterator(dir.path()))
    REQUIRE(lchown(entry.path().c_str(), kNobody, kNogroup) == 0);
  REQUIRE(chown(dir.path().c_str(), kNobody, kNogroup) == 0);

  ProcessResult as_root = run_tokend({"validate", "-c", dir.file("astro-tokend.toml")});
  REQUIRE_EXIT(as_root, 0);
  ProcessResult as_nobody =
      run_process({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                   TOKEND_BIN, "validate", "-c", dir.file("astro-tokend.toml")});
  REQUIRE_EXIT(as_nobody, 1);
  CHECK(as_nobody.err.find("ci.toml:6:14: error: sink_group \"daemon\": astro-tokend runs as uid "
                           "65534, which is not a member of that group, so it cannot give sinks "
                           "the group; add its user to the group (under systemd: "
                           "SupplementaryGroups=daemon)") != std::string::npos);
}
