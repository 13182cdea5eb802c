// The Node-API face of the reactor: class Server (an ObjectWrap; no globals, so
// several servers can live in one process).
//
// Threads: the loops run on their own native threads, never on the JS thread.
// listen() binds on the JS thread (microseconds) and starts them; close() stops
// and joins them on a libuv pool thread, then resolves. While listening, a
// thread-safe function is held (ref'd) so Node stays alive like it does for a
// net.Server; close() releases it, so a closed server never keeps Node alive.
#include <arpa/inet.h>
#include <napi.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "server.h"
#include "sockdiag.h"
#include "uring.h"

namespace tcplab {

// Why a build has no io_uring backend, and the command that adds it (the same words as
// CMakeLists.txt prints at build time; exported as noUringReason).
constexpr const char* kNoUring =
    "the addon was built without liburing-dev (add it: sudo apt-get install liburing-dev && npm run rebuild:native)";

namespace {

Napi::Error invalid_arg(Napi::Env env, bool range, const std::string& msg) {
  Napi::Error e = range ? Napi::Error(Napi::RangeError::New(env, msg)) : Napi::Error(Napi::TypeError::New(env, msg));
  e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_VALUE"));
  return e;
}

std::string describe(Napi::Value v) {
  if (v.IsString()) return "\"" + v.As<Napi::String>().Utf8Value() + "\"";
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e18) return std::to_string(static_cast<long long>(d));
    return v.ToString().Utf8Value();
  }
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? "true" : "false";
  if (v.IsNull()) return "null";
  if (v.IsArray()) return "an array";
  if (v.IsObject()) return "an object";
  return v.Type() == napi_undefined ? "undefined" : "a " + v.ToString().Utf8Value();
}

int64_t int_value(Napi::Env env, Napi::Value v, const std::string& name, int64_t lo, int64_t hi) {
  bool ok = v.IsNumber();
  double d = ok ? v.As<Napi::Number>().DoubleValue() : 0;
  ok = ok && std::isfinite(d) && d == std::floor(d) && d >= static_cast<double>(lo) && d <= static_cast<double>(hi);
  if (!ok) {
    throw invalid_arg(env, v.IsNumber(),
                      "option `" + name + "` must be an integer from " + std::to_string(lo) + " to " +
                          std::to_string(hi) + ", got " + describe(v));
  }
  return static_cast<int64_t>(d);
}

std::string choice(Napi::Env env, Napi::Value v, const std::string& name, const std::vector<std::string>& allowed) {
  std::string list;
  for (size_t i = 0; i < allowed.size(); i++) list += (i ? ", \"" : "\"") + allowed[i] + "\"";
  if (v.IsString()) {
    std::string s = v.As<Napi::String>().Utf8Value();
    for (const auto& a : allowed) {
      if (s == a) return s;
    }
  }
  throw invalid_arg(env, v.IsString(), "option `" + name + "` must be one of " + list + ", got " + describe(v));
}

const char* const kOptionNames[] = {"host",
                                    "port",
                                    "backlog",
                                    "model",
                                    "threads",
                                    "trigger",
                                    "idleTimeoutMs",
                                    "reusePort",
                                    "maxHeaderBytes",
                                    "maxBodyBytes",
                                    "headerTimeoutMs",
                                    "bodyTimeoutMs",
                                    "maxConnections",
                                    "share",
                                    "workUs",
                                    "work",
                                    "io",
                                    "uringBatchUs"};

const char* model_name(Model m);

ServerConfig parse_options(Napi::Env env, Napi::Value arg) {
  ServerConfig cfg;
  if (arg.IsUndefined()) return cfg;
  if (!arg.IsObject() || arg.IsArray())
    throw invalid_arg(env, false, "options must be an object, got " + describe(arg));
  Napi::Object o = arg.As<Napi::Object>();
  Napi::Array keys = o.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); i++) {
    std::string k = keys.Get(i).ToString().Utf8Value();
    bool known = false;
    for (const char* n : kOptionNames) known = known || k == n;
    if (!known) {
      std::string list;
      for (const char* n : kOptionNames) list += std::string(list.empty() ? "" : ", ") + n;
      throw invalid_arg(env, false, "unknown option `" + k + "`; allowed: " + list);
    }
  }
  auto has = [&](const char* k) { return !o.Get(k).IsUndefined(); };
  if (has("host")) {
    Napi::Value v = o.Get("host");
    if (!v.IsString())
      throw invalid_arg(env, false, "option `host` must be an IPv4 or IPv6 address, got " + describe(v));
    cfg.host = v.As<Napi::String>().Utf8Value();
    in6_addr tmp;
    if (inet_pton(AF_INET, cfg.host.c_str(), &tmp) != 1 && inet_pton(AF_INET6, cfg.host.c_str(), &tmp) != 1) {
      throw invalid_arg(env, false, "option `host` must be an IPv4 or IPv6 address, got " + describe(v));
    }
  }
  if (has("port")) cfg.port = static_cast<int>(int_value(env, o.Get("port"), "port", 0, 65535));
  if (has("backlog")) cfg.backlog = static_cast<int>(int_value(env, o.Get("backlog"), "backlog", INT32_MIN, INT32_MAX));
  if (has("model")) {
    std::vector<std::string> names;
    for (const ModelName& m : kModelNames) names.push_back(m.name);
    const std::string m = choice(env, o.Get("model"), "model", names);
    for (const ModelName& n : kModelNames)
      if (m == n.name) cfg.model = n.model;
  }
  if (has("workUs")) cfg.work_us = int_value(env, o.Get("workUs"), "workUs", 0, 1000000);
  if (has("work")) cfg.work_sleep = choice(env, o.Get("work"), "work", {"cpu", "sleep"}) == "sleep";
  if (has("share")) {
    std::string v = choice(env, o.Get("share"), "share", {"accept", "epoll", "exclusive", "reuseport"});
    cfg.share = v == "accept"      ? Share::kAccept
                : v == "epoll"     ? Share::kEpoll
                : v == "exclusive" ? Share::kExclusive
                                   : Share::kReusePort;
  }
  if (cfg.model == Model::kPrefork && (cfg.share == Share::kEpoll || cfg.share == Share::kExclusive)) {
    throw invalid_arg(env, true,
                      "option `share` must be \"accept\" or \"reuseport\" for model \"prefork\" (forked children would "
                      "share one epoll instance), got " +
                          std::string(cfg.share == Share::kEpoll ? "\"epoll\"" : "\"exclusive\""));
  }
  if (has("threads")) cfg.threads = static_cast<int>(int_value(env, o.Get("threads"), "threads", 1, 256));
  if (cfg.model == Model::kSingle && cfg.threads != 1) {
    throw invalid_arg(env, true,
                      "option `threads` must be 1 for model \"single\" (use \"reuseport\", \"acceptor\" or \"workers\" "
                      "for more), got " +
                          std::to_string(cfg.threads));
  }
  if ((cfg.model == Model::kIterative || cfg.model == Model::kFork || cfg.model == Model::kThread) &&
      cfg.threads != 1) {
    throw invalid_arg(env, true,
                      std::string("option `threads` must be 1 for model \"") + model_name(cfg.model) + "\" (use \"" +
                          (cfg.model == Model::kFork ? "prefork" : "prethread") + "\" for a pool of N), got " +
                          std::to_string(cfg.threads));
  }
  if (has("trigger")) cfg.edge = choice(env, o.Get("trigger"), "trigger", {"edge", "level"}) == "edge";
  if (has("io")) cfg.io_uring = choice(env, o.Get("io"), "io", {"epoll", "io_uring"}) == "io_uring";
  if (cfg.io_uring && !uring_built()) {
    throw invalid_arg(env, true,
                      std::string("option `io` must be \"epoll\" in this build, got \"io_uring\": ") + kNoUring);
  }
  if (cfg.io_uring && cfg.model != Model::kSingle && cfg.model != Model::kReusePort) {
    throw invalid_arg(env, true,
                      std::string("option `io` must be \"epoll\" for model \"") + model_name(cfg.model) +
                          "\" (io_uring runs the models \"single\" and \"reuseport\"), got \"io_uring\"");
  }
  if (has("uringBatchUs")) {
    cfg.uring_batch_us = static_cast<unsigned>(int_value(env, o.Get("uringBatchUs"), "uringBatchUs", 0, 10000));
    if (cfg.uring_batch_us != 0 && !cfg.io_uring)
      throw invalid_arg(
          env, true,
          "option `uringBatchUs` must be 0 with io \"epoll\" (it is the io_uring loop's batch window), got " +
              std::to_string(cfg.uring_batch_us));
  }
  if (has("idleTimeoutMs")) {
    cfg.idle_timeout_ms = int_value(env, o.Get("idleTimeoutMs"), "idleTimeoutMs", 0, 86400000);
  }
  if (has("reusePort")) {
    Napi::Value v = o.Get("reusePort");
    if (!v.IsBoolean()) throw invalid_arg(env, false, "option `reusePort` must be true or false, got " + describe(v));
    cfg.reuse_port = v.As<Napi::Boolean>().Value();
  }
  if (has("headerTimeoutMs"))
    cfg.header_timeout_ms = int_value(env, o.Get("headerTimeoutMs"), "headerTimeoutMs", 0, 86400000);
  if (has("bodyTimeoutMs")) cfg.body_timeout_ms = int_value(env, o.Get("bodyTimeoutMs"), "bodyTimeoutMs", 0, 86400000);
  if (has("maxConnections")) {
    cfg.max_connections = static_cast<uint64_t>(int_value(env, o.Get("maxConnections"), "maxConnections", 0, 10000000));
  }
  if (has("maxBodyBytes")) {
    cfg.max_body_bytes = static_cast<uint64_t>(int_value(env, o.Get("maxBodyBytes"), "maxBodyBytes", 0, 1LL << 40));
  }
  if (has("maxHeaderBytes")) {
    cfg.max_header_bytes = static_cast<size_t>(int_value(env, o.Get("maxHeaderBytes"), "maxHeaderBytes", 256, 1048576));
  }
  return cfg;
}

// Why the kernel refused an io_uring, as far as this process can tell.
std::string uring_refusal(int err) {
  if (err == ENOSYS) return "this kernel has no io_uring (built without CONFIG_IO_URING); use io \"epoll\"";
  if (err == EOPNOTSUPP)
    return "this kernel's io_uring_enter has no minimum wait (IORING_FEAT_MIN_TIMEOUT, Linux 6.12), which a batch "
           "window needs; set uringBatchUs to 0";
  std::string disabled;
  if (FILE* f = std::fopen("/proc/sys/kernel/io_uring_disabled", "r")) {
    char b[16] = {0};
    if (std::fgets(b, sizeof b, f)) disabled = std::string(b, std::strcspn(b, "\n"));
    std::fclose(f);
  }
  if (err == EPERM && disabled == "2")
    return "kernel.io_uring_disabled is 2 (io_uring refused to every process); use io \"epoll\"";
  if (err == EPERM && disabled == "1")
    return "kernel.io_uring_disabled is 1 (io_uring only for kernel.io_uring_group and CAP_SYS_ADMIN); use io "
           "\"epoll\"";
  if (err == EPERM)
    return "a seccomp filter refuses io_uring (Docker engines from 25.0 block it in their default profile); use io "
           "\"epoll\"";
  return std::string(std::strerror(err)) + "; use io \"epoll\"";
}

const char* model_name(Model m) {
  for (const ModelName& n : kModelNames)
    if (n.model == m) return n.name;
  return "?";
}

void put_counters(Napi::Env env, Napi::Object o, const ThreadStats* const* all, size_t n) {
  auto sum = [&](auto field) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += static_cast<double>((all[i]->*field).get());
    return Napi::Number::New(env, s);
  };
  o.Set("accepted", sum(&ThreadStats::accepted));
  o.Set("closed", sum(&ThreadStats::closed));
  o.Set("active", sum(&ThreadStats::active));
  o.Set("requests", sum(&ThreadStats::requests));
  o.Set("bytesIn", sum(&ThreadStats::bytes_in));
  o.Set("bytesOut", sum(&ThreadStats::bytes_out));
  o.Set("badRequests", sum(&ThreadStats::status400));
  o.Set("bodyTooLarge", sum(&ThreadStats::status413));
  o.Set("headersTooLarge", sum(&ThreadStats::status431));
  o.Set("notImplemented", sum(&ThreadStats::status501));
  o.Set("versionNotSupported", sum(&ThreadStats::status505));
  o.Set("idleTimeouts", sum(&ThreadStats::idle_timeouts));
  o.Set("headerTimeouts", sum(&ThreadStats::header_timeouts));
  o.Set("bodyTimeouts", sum(&ThreadStats::body_timeouts));
  o.Set("overCap", sum(&ThreadStats::over_cap));
  o.Set("emfileEvents", sum(&ThreadStats::emfile_events));
  o.Set("wakeups", sum(&ThreadStats::wakeups));
  o.Set("futileWakeups", sum(&ThreadStats::futile_wakeups));
  o.Set("connThreadsSpawned", sum(&ThreadStats::spawned));
  o.Set("connThreadsLive", sum(&ThreadStats::live));
  Napi::Object errs = Napi::Object::New(env);
  for (int k = 0; k < kAcceptErrKinds; k++) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += static_cast<double>(all[i]->accept_errors[k].get());
    errs.Set(kAcceptErrNames[k], Napi::Number::New(env, s));
  }
  o.Set("acceptErrors", errs);
}

class ServerWrap : public Napi::ObjectWrap<ServerWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "Server",
        {InstanceMethod<&ServerWrap::Listen>("listen"), InstanceMethod<&ServerWrap::Pause>("pause"),
         InstanceMethod<&ServerWrap::Resume>("resume"), InstanceMethod<&ServerWrap::SetAcceptRate>("setAcceptRate"),
         InstanceMethod<&ServerWrap::Failures>("failures"), InstanceMethod<&ServerWrap::Stats>("stats"),
         InstanceMethod<&ServerWrap::Close>("close")});
  }

  explicit ServerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ServerWrap>(info) {
    cfg_ = parse_options(info.Env(), info[0]);  // before any socket exists
    server_ = std::make_unique<Server>(cfg_);
  }

  ~ServerWrap() override {
    if (server_) server_->stop();
    if (state_ == kListening || state_ == kClosing) keepalive_.Release();
  }

 private:
  enum State { kNew, kListening, kClosing, kClosed };

  class CloseWorker : public Napi::AsyncWorker {
   public:
    CloseWorker(Napi::Env env, ServerWrap* wrap, Napi::Object self)
        : Napi::AsyncWorker(env, "tcplab.Server.close"), wrap_(wrap), self_(Napi::Persistent(self)) {}
    void Execute() override {
      try {
        wrap_->server_->stop();
      } catch (const std::exception& e) {
        SetError(e.what());
      }
    }
    void OnOK() override { Finish(nullptr); }
    // close() must settle whatever happened: the waiters are rejected with the reason.
    void OnError(const Napi::Error& e) override { Finish(&e); }

   private:
    void Finish(const Napi::Error* err) {
      wrap_->keepalive_.Release();
      wrap_->state_ = kClosed;
      for (auto& d : wrap_->waiters_) {
        if (err) {
          d.Reject(err->Value());
        } else {
          d.Resolve(Env().Undefined());
        }
      }
      wrap_->waiters_.clear();
    }

    ServerWrap* wrap_;
    Napi::ObjectReference self_;  // keeps the wrapper alive until the threads are joined
  };

  Napi::Value Listen(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto d = Napi::Promise::Deferred::New(env);
    if (state_ != kNew) {
      const bool listening = state_ == kListening;
      Napi::Error e = Napi::Error::New(env, listening ? "listen() was already called" : "the server is closed");
      e.Set("code", Napi::String::New(env, listening ? "ERR_SERVER_ALREADY_LISTEN" : "ERR_SERVER_NOT_RUNNING"));
      d.Reject(e.Value());
      return d.Promise();
    }
    int port;
    try {
      port = server_->listen();
    } catch (const SysError& se) {
      const char* name = strerrorname_np(se.err);
      std::string code = name ? name : "E" + std::to_string(se.err);
      Napi::Error e = Napi::Error::New(env, se.syscall.rfind("io_uring", 0) == 0
                                                ? se.syscall + " " + code + ": " + uring_refusal(se.err)
                                                : se.syscall + " " + code + ": " + std::strerror(se.err) + " " +
                                                      cfg_.host + ":" + std::to_string(cfg_.port));
      e.Set("code", Napi::String::New(env, code));
      e.Set("errno", Napi::Number::New(env, -se.err));
      e.Set("syscall", Napi::String::New(env, se.syscall));
      e.Set("address", Napi::String::New(env, cfg_.host));
      e.Set("port", Napi::Number::New(env, cfg_.port));
      state_ = kClosed;
      d.Reject(e.Value());
      return d.Promise();
    } catch (const std::exception& ex) {
      Napi::Error e = Napi::Error::New(env, std::string("listen failed: ") + ex.what());
      e.Set("code", Napi::String::New(env, "ERR_NATIVE"));
      state_ = kClosed;
      d.Reject(e.Value());
      return d.Promise();
    }
    keepalive_ = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                               "tcplab.Server", 0, 1);
    state_ = kListening;
    Napi::Object r = Napi::Object::New(env);
    r.Set("port", Napi::Number::New(env, port));
    d.Resolve(r);
    return d.Promise();
  }

  void require_open(Napi::Env env) {
    if (state_ == kClosing || state_ == kClosed) {
      Napi::Error e = Napi::Error::New(env, "the server is closed");
      e.Set("code", Napi::String::New(env, "ERR_SERVER_NOT_RUNNING"));
      throw e;
    }
  }

  Napi::Value Pause(const Napi::CallbackInfo& info) {
    require_open(info.Env());
    server_->pause();
    return info.Env().Undefined();
  }

  Napi::Value Resume(const Napi::CallbackInfo& info) {
    require_open(info.Env());
    server_->resume();
    return info.Env().Undefined();
  }

  Napi::Value SetAcceptRate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    require_open(env);
    int64_t n = int_value(env, info[0], "perSecond", 0, 1000000000);
    server_->set_accept_rate(static_cast<uint64_t>(n));
    return env.Undefined();
  }

  Napi::Value Failures(const Napi::CallbackInfo& info) {
    const std::vector<std::string> failed = loop_failures();
    Napi::Array a = Napi::Array::New(info.Env(), failed.size());
    for (size_t i = 0; i < failed.size(); i++) a.Set(i, failed[i]);
    return a;
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("model", model_name(cfg_.model));
    o.Set("threads", Napi::Number::New(env, cfg_.threads));
    o.Set("trigger", cfg_.edge ? "edge" : "level");
    o.Set("io", cfg_.io_uring ? "io_uring" : "epoll");
    o.Set("share", cfg_.share == Share::kAccept      ? "accept"
                   : cfg_.share == Share::kEpoll     ? "epoll"
                   : cfg_.share == Share::kExclusive ? "exclusive"
                                                     : "reuseport");
    o.Set("backlog", Napi::Number::New(env, cfg_.backlog));
    o.Set("workUs", Napi::Number::New(env, static_cast<double>(cfg_.work_us)));
    o.Set("work", cfg_.work_sleep ? "sleep" : "cpu");
    o.Set("state", state_ == kNew         ? "new"
                   : state_ == kListening ? "listening"
                   : state_ == kClosing   ? "closing"
                                          : "closed");
    o.Set("paused", Napi::Boolean::New(env, server_->paused()));
    o.Set("acceptRate", Napi::Number::New(env, static_cast<double>(server_->accept_rate())));
    o.Set("failures", Failures(info));
    const auto& views = server_->threads();
    std::vector<const ThreadStats*> all;
    for (const auto& v : views) all.push_back(v.stats);
    Napi::Object total = Napi::Object::New(env);
    put_counters(env, total, all.data(), all.size());
    o.Set("total", total);
    Napi::Array per = Napi::Array::New(env, views.size());
    for (size_t i = 0; i < views.size(); i++) {
      Napi::Object t = Napi::Object::New(env);
      t.Set("role", views[i].role);
      t.Set("tid", Napi::Number::New(env, views[i].stats->tid.load(std::memory_order_relaxed)));
      put_counters(env, t, &all[i], 1);
      per.Set(static_cast<uint32_t>(i), t);
    }
    o.Set("perThread", per);
    return o;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto d = Napi::Promise::Deferred::New(env);
    if (state_ == kNew) state_ = kClosed;
    if (state_ == kClosed) {
      d.Resolve(env.Undefined());
      return d.Promise();
    }
    waiters_.push_back(d);
    if (state_ == kListening) {
      state_ = kClosing;
      (new CloseWorker(env, this, info.This().As<Napi::Object>()))->Queue();
    }
    return d.Promise();
  }

  ServerConfig cfg_;
  std::unique_ptr<Server> server_;
  State state_ = kNew;
  Napi::ThreadSafeFunction keepalive_;
  std::vector<Napi::Promise::Deferred> waiters_;
};

// sockDiag(all: boolean) → { states: {stateNumber: count}, listeners: [{port, recvQ, sendQ}] }
// for this thread's network namespace. all=false asks for listeners only (cheap).
Napi::Value SockDiagJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool all = info.Length() > 0 && info[0].ToBoolean().Value();
  DiagResult r;
  std::string error;
  if (!SockDiag(all ? kAllStates : kListenOnly, &r, &error)) {
    Napi::Error::New(env, "sockDiag: " + error).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object states = Napi::Object::New(env);
  for (int i = 1; i < 16; i++) {
    if (r.states[i]) states.Set(Napi::Number::New(env, i), Napi::Number::New(env, static_cast<double>(r.states[i])));
  }
  Napi::Array listeners = Napi::Array::New(env, r.listeners.size());
  for (size_t i = 0; i < r.listeners.size(); i++) {
    Napi::Object l = Napi::Object::New(env);
    l.Set("port", r.listeners[i].port);
    l.Set("recvQ", r.listeners[i].queued);
    l.Set("sendQ", r.listeners[i].limit);
    listeners.Set(i, l);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("states", states);
  out.Set("listeners", listeners);
  return out;
}

}  // namespace
}  // namespace tcplab

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  using tcplab::ServerWrap;
  exports.Set("Server", ServerWrap::Define(env));
  exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  Napi::Array backends = Napi::Array::New(env);
  backends.Set(0u, "epoll");
  if (tcplab::uring_built()) backends.Set(1u, "io_uring");
  exports.Set("ioBackends", backends);
  exports.Set("noUringReason", tcplab::kNoUring);
  exports.Set("sockDiag", Napi::Function::New(env, tcplab::SockDiagJs, "sockDiag"));
  return exports;
}

NODE_API_MODULE(tcplab_native, InitModule)
