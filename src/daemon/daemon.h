// daemon/ — `astro-tokend run` (product.md §7): the reconcile loop on a
// jittered timer, woken at once by spec or config edits (inotify, debounced)
// and SIGHUP; reloads that never apply a half-loaded set; per-token and
// whole-cycle backoff; systemd notifications and watchdog; the /metrics,
// /healthz and /readyz server. One reconcile cycle is daemon/cycle.h; this
// is the loop around it.
//
// May not: decide what to change (plan::compute does), call the API or SQL
// except through apply/ and the runtime's seams, or parse TOML (spec/ does).
// Threads share only what is named and guarded below; the loop sleeps on a
// condition variable that shutdown, change events, SIGHUP and the timer wake.
#pragma once

#include <ostream>

#include "daemon/notify.h"
#include "spec/model.h"
#include "util/result.h"

namespace tokend::daemon {

struct DaemonOptions {
  // One reconcile cycle, then return (no server, watcher or notifications).
  bool once = false;
  // Where READY=1, STATUS=… and friends go; nullptr: sd_notify.
  Notifier* notifier = nullptr;
};

// Runs the daemon for `desired` (a config and specs that loaded without a
// diagnostic) and logs one line per event to `log_stream`.
//
// Startup: blocks SIGTERM, SIGINT and SIGHUP in the calling thread (call it
// before starting other threads), takes the state's writer lock for the
// daemon's lifetime, opens the state and the API client, binds [server]
// listen, then sends READY=1. A startup failure comes back as the Error
// (Conflict naming the lock's holder, Io, Invalid, Unauthorized for a
// missing API token…) before any API call; nothing is changed.
//
// Then: reconciles at start, every interval ± jitter, and after each
// accepted reload, until SIGTERM or SIGINT; those send STOPPING=1, let the
// change in flight finish and commit, and return ok.
//
// With options.once: one cycle; ok when it succeeded, else an Error saying
// why.
Status run_daemon(spec::DesiredState desired, const DaemonOptions& options,
                  std::ostream& log_stream);

}  // namespace tokend::daemon
