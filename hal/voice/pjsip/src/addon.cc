// node-addon-api surface over pjsua-lib: start/stop, accounts, calls.
//
// pjsua is one per process, so this addon keeps one global stack. Every
// function runs on the JS thread, which is registered with pjlib before its
// first pjsua call. stop() runs pjsua_destroy on a libuv pool thread (it
// waits for unregistrations) and resolves once the ThreadSafeFunction has
// delivered every queued event and been finalized.
// Over 400 lines: the whole JS surface of the one pjsua stack (start/stop, accounts, calls,
// media) and the argument readers they share; the PJSIP side is in callbacks.cc.
#include <napi.h>
#include <sys/resource.h>
#include <uv.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <deque>
#include <mutex>
#include <optional>
#include <string>

#include "voice.h"

namespace e911voice {

// shared-map.cc: a file's page cache as an ArrayBuffer (the emergency begin file).
Napi::Value MapShared(const Napi::CallbackInfo& info);
Napi::Value UnmapShared(const Napi::CallbackInfo& info);

namespace {

enum class State { Idle, Running, Stopping };

std::mutex g_mu;  // guards g_tsfn/g_live against emit() on PJSIP threads
Napi::ThreadSafeFunction g_tsfn;
bool g_live = false;
State g_state = State::Idle;
// Strings handed to pjsua by pointer live here until the stack stops.
std::deque<std::string> g_strings;
pjsua_transport_config g_rtp_cfg;  // RTP bound/public address for every account

struct StopContext {
  std::optional<Napi::Promise::Deferred> deferred;
};
StopContext* g_stopctx = nullptr;

// Where the last makeCall spent its time, for the emergency benchmark's
// breakdown: building pjsua's arguments, pjsua_call_make_call itself, and
// what the JS thread went through meanwhile (getrusage of this thread).
struct MakeCallTiming {
  double prepareMs = 0, pjsuaMs = 0, pjsuaCpuMs = 0;
  long voluntarySwitches = 0, involuntarySwitches = 0, minorFaults = 0;
};
MakeCallTiming g_last_call_timing;

struct ThreadUsage {
  rusage ru;
  ThreadUsage() { getrusage(RUSAGE_THREAD, &ru); }
};

// CPU time of the calling thread: what the work cost, whatever the load.
double thread_cpu_ms() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// ---- helpers -------------------------------------------------------------

pj_str_t keep(const std::string& s) {
  g_strings.push_back(s);
  return pj_str(const_cast<char*>(g_strings.back().c_str()));
}

pj_str_t pool_str(pj_pool_t* pool, const std::string& s) {
  pj_str_t src = {const_cast<char*>(s.data()), static_cast<pj_ssize_t>(s.size())};
  pj_str_t dst;
  pj_strdup(pool, &dst, &src);
  return dst;
}

void register_thread() {
  // pj_thread_desc must outlive the registration: one per thread, for good.
  static thread_local pj_thread_desc desc;
  static thread_local pj_thread_t* thread = nullptr;
  if (!pj_thread_is_registered()) {
    std::memset(desc, 0, sizeof(desc));
    pj_thread_register("e911-node", desc, &thread);
  }
}

[[noreturn]] void fail(Napi::Env env, const std::string& what, pj_status_t st) {
  char buf[PJ_ERR_MSG_SIZE];
  pj_strerror(st, buf, sizeof(buf));
  Napi::Error err = Napi::Error::New(env, what + " failed: " + buf + " (pj status " + std::to_string(st) + ")");
  err.Set("pjStatus", Napi::Number::New(env, st));
  throw err;
}

void check(Napi::Env env, pj_status_t st, const std::string& what) {
  if (st != PJ_SUCCESS) fail(env, what, st);
}

void require_running(Napi::Env env) {
  if (g_state != State::Running) throw Napi::Error::New(env, "voice stack is not running");
  register_thread();
}

std::string get_str(const Napi::Object& o, const char* key, const std::string& def = std::string()) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : def;
}

double get_num(const Napi::Object& o, const char* key, double def) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : def;
}

bool get_bool(const Napi::Object& o, const char* key, bool def) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : def;
}

Napi::Array get_arr(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsArray() ? v.As<Napi::Array>() : Napi::Array::New(o.Env());
}

int get_id(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "id must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

// pjsua asserts (and aborts the process) on an id out of range: refuse it here with a JS error.
int get_call_id(const Napi::CallbackInfo& info, size_t i) {
  int id = get_id(info, i);
  if (id < 0 || id >= static_cast<int>(pjsua_call_get_max_count())) throw Napi::RangeError::New(info.Env(), "no call " + std::to_string(id));
  return id;
}

int get_acc_id(const Napi::CallbackInfo& info, size_t i) {
  int id = get_id(info, i);
  if (!pjsua_acc_is_valid(id)) throw Napi::RangeError::New(info.Env(), "no account " + std::to_string(id));
  return id;
}

Napi::Value to_js(Napi::Env env, const Value& v) {
  if (auto d = std::get_if<double>(&v)) return Napi::Number::New(env, *d);
  if (auto b = std::get_if<bool>(&v)) return Napi::Boolean::New(env, *b);
  if (auto s = std::get_if<std::string>(&v)) return Napi::String::New(env, *s);
  const auto& hs = std::get<HeaderList>(v);
  Napi::Array arr = Napi::Array::New(env, hs.size());
  for (size_t i = 0; i < hs.size(); ++i) {
    Napi::Object h = Napi::Object::New(env);
    h.Set("name", hs[i].first);
    h.Set("value", hs[i].second);
    arr.Set(static_cast<uint32_t>(i), h);
  }
  return arr;
}

void deliver(Napi::Env env, Napi::Function fn, Event* ev) {
  if (env != nullptr && fn != nullptr) {
    Napi::Object o = Napi::Object::New(env);
    for (const auto& f : ev->fields) o.Set(f.first, to_js(env, f.second));
    try {
      fn.Call({o});
    } catch (const Napi::Error& e) {
      e.ThrowAsJavaScriptException();  // surfaces as an uncaught exception
    }
  }
  delete ev;
}

void release_tsfn() {
  std::lock_guard<std::mutex> lk(g_mu);
  if (g_live) {
    g_live = false;
    g_tsfn.Release();
  }
}

// Tear down pjsua without network traffic; used on failed start and when the
// environment goes away under a running stack.
void destroy_now() {
  register_thread();
  stop_test_tone();
  pjsua_destroy2(PJSUA_DESTROY_NO_NETWORK);
}

// sound: 'null' | { capture, playback }; audioTest: { toneHz, toneOnMs,
// toneOffMs, recordDir } (tests only).
void read_media_options(const Napi::Object& opts) {
  g_media = MediaOptions();
  Napi::Value sound = opts.Get("sound");
  if (sound.IsObject()) {
    Napi::Object so = sound.As<Napi::Object>();
    g_media.nullSound = false;
    g_media.capture = get_str(so, "capture", "default");
    g_media.playback = get_str(so, "playback", "default");
  }
  Napi::Value test = opts.Get("audioTest");
  if (test.IsObject()) {
    Napi::Object t = test.As<Napi::Object>();
    g_media.toneHz = static_cast<unsigned>(get_num(t, "toneHz", 0));
    g_media.toneOnMs = static_cast<unsigned>(get_num(t, "toneOnMs", 0));
    g_media.toneOffMs = static_cast<unsigned>(get_num(t, "toneOffMs", 0));
    g_media.recordDir = get_str(t, "recordDir");
  }
}

pjsip_transport_type_e transport_type(const std::string& kind) {
  if (kind == "udp") return PJSIP_TRANSPORT_UDP;
  if (kind == "tcp") return PJSIP_TRANSPORT_TCP;
  if (kind == "tls") return PJSIP_TRANSPORT_TLS;
  return PJSIP_TRANSPORT_UNSPECIFIED;
}

void fill_transport_config(const Napi::Object& t, pjsua_transport_config* tc) {
  pjsua_transport_config_default(tc);
  tc->port = static_cast<unsigned>(get_num(t, "port", 0));
  std::string bound = get_str(t, "boundAddress");
  std::string pub = get_str(t, "publicAddress");
  if (!bound.empty()) tc->bound_addr = keep(bound);
  if (!pub.empty()) tc->public_addr = keep(pub);
  Napi::Value tlsv = t.Get("tls");
  if (tlsv.IsObject()) {
    Napi::Object tls = tlsv.As<Napi::Object>();
    std::string ca = get_str(tls, "caListFile"), cert = get_str(tls, "certFile");
    std::string key = get_str(tls, "privateKeyFile"), pw = get_str(tls, "password");
    if (!ca.empty()) tc->tls_setting.ca_list_file = keep(ca);
    if (!cert.empty()) tc->tls_setting.cert_file = keep(cert);
    if (!key.empty()) tc->tls_setting.privkey_file = keep(key);
    if (!pw.empty()) tc->tls_setting.password = keep(pw);
    tc->tls_setting.verify_server = get_bool(tls, "verifyServer", true);
    g_cbopts.tlsVerifyServer = tc->tls_setting.verify_server;
    tc->tls_setting.method = PJSIP_TLSV1_2_METHOD;
  }
}

// ---- start / stop --------------------------------------------------------

void on_tsfn_finalize(Napi::Env env, void*, StopContext* ctx) {
  if (ctx->deferred) {
    g_state = State::Idle;
    ctx->deferred->Resolve(env.Undefined());
  }
  if (g_stopctx == ctx) g_stopctx = nullptr;
  delete ctx;
}

// start(options, emit) -> { transports, localAccounts, version }
Napi::Value Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (g_state != State::Idle) throw Napi::Error::New(env, "voice stack already started in this process");
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction())
    throw Napi::TypeError::New(env, "start(options, emit)");
  Napi::Object opts = info[0].As<Napi::Object>();
  Napi::Array transports = get_arr(opts, "transports");
  if (transports.Length() == 0) throw Napi::TypeError::New(env, "at least one transport is required");

  g_strings.clear();
  reset_playbacks();
  g_cbopts = CallbackOptions();
  g_cbopts.autoAnswer = get_bool(opts, "autoAnswer", false);
  Napi::Array hdrs = get_arr(opts, "incomingHeaders");
  for (uint32_t i = 0; i < hdrs.Length(); ++i) {
    std::string h = hdrs.Get(i).ToString().Utf8Value();
    for (auto& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    g_cbopts.incomingHeaders.push_back(h);
  }

  g_stopctx = new StopContext();
  g_tsfn = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "e911-voice-events", 0, 1,
                                         g_stopctx, on_tsfn_finalize, static_cast<void*>(nullptr));
  {
    std::lock_guard<std::mutex> lk(g_mu);
    g_live = true;
  }

  // Route pjlib's own start-up lines too; its default writer prints to stdout.
  pj_log_set_log_func(&log_writer);
  pj_log_set_decor(PJ_LOG_HAS_SENDER);
  pj_log_set_level(static_cast<int>(get_num(opts, "logLevel", 3)));

  bool created = false;
  try {
    check(env, pjsua_create(), "pjsua_create");
    created = true;
    register_thread();

    pjsua_config cfg;
    pjsua_config_default(&cfg);
    install_callbacks(&cfg.cb);
    cfg.max_calls = static_cast<unsigned>(get_num(opts, "maxCalls", 4));
    std::string ua = get_str(opts, "userAgent", "e911-agent");
    cfg.user_agent = keep(ua);
    cfg.thread_cnt = 1;

    pjsua_logging_config log;
    pjsua_logging_config_default(&log);
    log.level = static_cast<unsigned>(get_num(opts, "logLevel", 3));
    log.console_level = log.level;
    log.msg_logging = get_bool(opts, "logSipMessages", false);
    log.decor = PJ_LOG_HAS_SENDER;  // the JS logger adds time and level
    log.cb = &log_writer;

    read_media_options(opts);
    pjsua_media_config media;
    pjsua_media_config_default(&media);
    // No voice activity detection, so no silence suppression: a caller who
    // whispers or pauses is never cut off, and the PSAP hears the room.
    media.no_vad = PJ_TRUE;
    media.enable_ice = PJ_FALSE;
    media.thread_cnt = 1;
    if (g_media.nullSound) media.ec_tail_len = 0;
    // Keep the sound device open. pjsua closes an idle one after a second,
    // and pjsua_call_make_call opens it again before it sends the INVITE:
    // opening it (an ALSA device, or the null device's clock thread) would
    // sit between the digit and the INVITE of every 911 call.
    media.snd_auto_close_time = -1;
    g_media.clockRate = media.clock_rate;
    g_media.ptimeMs = media.audio_frame_ptime;

    check(env, pjsua_init(&cfg, &log, &media), "pjsua_init");
    // Timer B/F/D: how long a transaction waits for a final response (UDP
    // to a dead peer gets no ICMP back). Set every start: it is process-wide.
    pjsip_tsx_set_timers(0, 0, 0, static_cast<unsigned>(get_num(opts, "transactionTimeoutMs", PJSIP_TD_TIMEOUT)));
    // RFC 3261 18.1.1 moves requests over 1300 bytes from UDP to TCP, and
    // an INVITE with a PIDF-LO always is: to a UDP-only peer that costs a
    // TCP attempt first (a refused or, worse, a silently dropped connect)
    // before pjsip falls back to UDP. Off unless asked for.
    pjsip_cfg()->endpt.disable_tcp_switch = !get_bool(opts, "largeRequestsOverTcp", false);

    // RTP binds to the configured address too: without it the SDP
    // advertises the machine's first interface.
    pjsua_transport_config_default(&g_rtp_cfg);
    g_rtp_cfg.port = static_cast<unsigned>(get_num(opts, "rtpPort", 4000));
    g_rtp_cfg.port_range = static_cast<unsigned>(get_num(opts, "rtpPortRange", 0));
    std::string rtp_bound = get_str(opts, "rtpBoundAddress"), rtp_pub = get_str(opts, "rtpPublicAddress");
    if (!rtp_bound.empty()) g_rtp_cfg.bound_addr = keep(rtp_bound);
    if (!rtp_pub.empty()) g_rtp_cfg.public_addr = keep(rtp_pub);

    Napi::Array outTp = Napi::Array::New(env);
    Napi::Object localAccs = Napi::Object::New(env);
    std::vector<std::pair<std::string, pjsua_transport_id>> created_tps;
    for (uint32_t i = 0; i < transports.Length(); ++i) {
      Napi::Object t = transports.Get(i).As<Napi::Object>();
      std::string kind = get_str(t, "kind", "udp");
      pjsip_transport_type_e type = transport_type(kind);
      if (type == PJSIP_TRANSPORT_UNSPECIFIED) throw Napi::TypeError::New(env, "unknown transport kind: " + kind);
      pjsua_transport_config tc;
      fill_transport_config(t, &tc);
      pjsua_transport_id tid;
      check(env, pjsua_transport_create(type, &tc, &tid), "pjsua_transport_create(" + kind + ")");
      created_tps.emplace_back(kind, tid);
      pjsua_transport_info ti;
      check(env, pjsua_transport_get_info(tid, &ti), "pjsua_transport_get_info");
      Napi::Object o = Napi::Object::New(env);
      o.Set("id", tid);
      o.Set("kind", kind);
      o.Set("host", to_string(ti.local_name.host));
      o.Set("port", ti.local_name.port);
      outTp.Set(i, o);
    }

    prefer_g711();
    check(env, pjsua_start(), "pjsua_start");
    // A missing or busy device never stops a call: the null device stands
    // in and the reason goes back to JS (reported, not thrown).
    std::string soundProblem = select_sound_device();
    check(env, start_test_tone(), "test tone");

    // One local (registrar-less) account per transport, so a call can go
    // out with no registered account at all.
    for (const auto& [kind, tid] : created_tps) {
      pjsua_acc_id acc;
      check(env, pjsua_acc_add_local(tid, PJ_FALSE, &acc), "pjsua_acc_add_local");
      pjsua_acc_config ac;
      pj_pool_t* pool = pjsua_pool_create("e911-acc", 512, 512);
      pjsua_acc_get_config(acc, pool, &ac);
      ac.rtp_cfg = g_rtp_cfg;
      pj_status_t st = pjsua_acc_modify(acc, &ac);
      pj_pool_release(pool);
      check(env, st, "pjsua_acc_modify(local rtp)");
      if (!localAccs.Has(kind)) localAccs.Set(kind, acc);
    }

    g_state = State::Running;
    Napi::Object result = Napi::Object::New(env);
    result.Set("transports", outTp);
    result.Set("localAccounts", localAccs);
    result.Set("version", pj_get_version());
    Napi::Object sound = Napi::Object::New(env);
    sound.Set("device", g_media.nullSound || !soundProblem.empty() ? "null" : "configured");
    if (!g_media.nullSound) {
      sound.Set("capture", g_media.capture);
      sound.Set("playback", g_media.playback);
    }
    if (!soundProblem.empty()) sound.Set("fallbackReason", soundProblem);
    result.Set("sound", sound);
    return result;
  } catch (...) {
    if (created) destroy_now();
    g_state = State::Idle;
    release_tsfn();
    throw;
  }
}

class StopWorker : public Napi::AsyncWorker {
 public:
  StopWorker(Napi::Env env, unsigned flags) : Napi::AsyncWorker(env), flags_(flags) {}
  void Execute() override {
    register_thread();
    stop_test_tone();
    pjsua_destroy2(flags_);
  }
  void OnOK() override { release_tsfn(); }  // finalizer resolves the promise

 private:
  unsigned flags_;
};

// stop({ unregister }) -> Promise<void>
Napi::Value Stop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto deferred = Napi::Promise::Deferred::New(env);
  if (g_state == State::Idle) {
    deferred.Resolve(env.Undefined());
    return deferred.Promise();
  }
  if (g_state == State::Stopping) throw Napi::Error::New(env, "voice stack is already stopping");
  bool unregister = info.Length() > 0 && info[0].IsObject() ? get_bool(info[0].As<Napi::Object>(), "unregister", true) : true;
  g_state = State::Stopping;
  g_stopctx->deferred = deferred;
  (new StopWorker(env, unregister ? 0 : PJSUA_DESTROY_NO_NETWORK))->Queue();
  return deferred.Promise();
}

// Last resort at process exit: synchronous, no network.
Napi::Value ShutdownNow(const Napi::CallbackInfo& info) {
  if (g_state == State::Running) {
    destroy_now();
    g_state = State::Idle;
    release_tsfn();
  }
  return info.Env().Undefined();
}

// ---- accounts ------------------------------------------------------------

// addAccount({ uri, registrar?, proxies?, credentials?, register?, regTimeoutSec?,
//              unregTimeoutMs?, transportId?, isDefault? }) -> accountId
Napi::Value AddAccount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_running(env);
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "addAccount(config)");
  Napi::Object o = info[0].As<Napi::Object>();
  // pjsua_acc_add copies the config: these strings only need to live here.
  std::deque<std::string> tmp;
  auto s = [&tmp](const std::string& v) {
    tmp.push_back(v);
    return pj_str(const_cast<char*>(tmp.back().c_str()));
  };
  pjsua_acc_config cfg;
  pjsua_acc_config_default(&cfg);
  cfg.id = s(get_str(o, "uri"));
  std::string reg = get_str(o, "registrar");
  if (!reg.empty()) cfg.reg_uri = s(reg);
  cfg.register_on_acc_add = get_bool(o, "register", !reg.empty());
  cfg.reg_timeout = static_cast<unsigned>(get_num(o, "regTimeoutSec", cfg.reg_timeout));
  cfg.unreg_timeout = static_cast<unsigned>(get_num(o, "unregTimeoutMs", cfg.unreg_timeout));
  Napi::Array proxies = get_arr(o, "proxies");
  for (uint32_t i = 0; i < proxies.Length() && cfg.proxy_cnt < PJ_ARRAY_SIZE(cfg.proxy); ++i)
    cfg.proxy[cfg.proxy_cnt++] = s(proxies.Get(i).ToString().Utf8Value());
  Napi::Array creds = get_arr(o, "credentials");
  for (uint32_t i = 0; i < creds.Length() && cfg.cred_count < PJ_ARRAY_SIZE(cfg.cred_info); ++i) {
    Napi::Object c = creds.Get(i).As<Napi::Object>();
    pjsip_cred_info& ci = cfg.cred_info[cfg.cred_count++];
    ci.realm = s(get_str(c, "realm", "*"));
    ci.scheme = s("digest");
    ci.username = s(get_str(c, "username"));
    ci.data_type = PJSIP_CRED_DATA_PLAIN_PASSWD;
    ci.data = s(get_str(c, "password"));
  }
  int tid = static_cast<int>(get_num(o, "transportId", -1));
  if (tid >= 0) cfg.transport_id = tid;
  cfg.rtp_cfg = g_rtp_cfg;
  pjsua_acc_id acc;
  check(env, pjsua_acc_add(&cfg, get_bool(o, "isDefault", false), &acc), "pjsua_acc_add");
  return Napi::Number::New(env, acc);
}

Napi::Value SetRegistration(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_running(env);
  int acc = get_acc_id(info, 0);
  bool renew = info.Length() > 1 && info[1].ToBoolean().Value();
  check(env, pjsua_acc_set_registration(acc, renew), renew ? "register" : "unregister");
  return env.Undefined();
}

Napi::Value RemoveAccount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_running(env);
  check(env, pjsua_acc_del(get_acc_id(info, 0)), "pjsua_acc_del");
  return env.Undefined();
}

Napi::Value AccountInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_running(env);
  pjsua_acc_info ai;
  check(env, pjsua_acc_get_info(get_acc_id(info, 0), &ai), "pjsua_acc_get_info");
  Napi::Object o = Napi::Object::New(env);
  o.Set("accountId", ai.id);
  o.Set("uri", to_string(ai.acc_uri));
  o.Set("isDefault", static_cast<bool>(ai.is_default));
  o.Set("hasRegistration", static_cast<bool>(ai.has_registration));
  o.Set("statusCode", static_cast<int>(ai.status));
  o.Set("statusText", to_string(ai.status_text));
  o.Set("expires", ai.expires == PJSIP_EXPIRES_NOT_SPECIFIED ? 0 : ai.expires);
  o.Set("registered", ai.has_registration && ai.status / 100 == 2 && ai.expires > 0 &&
                          ai.expires != PJSIP_EXPIRES_NOT_SPECIFIED);
  return o;
}

// ---- calls ---------------------------------------------------------------

void add_headers(pj_pool_t* pool, pjsip_hdr* list, const Napi::Array& headers) {
  for (uint32_t i = 0; i < headers.Length(); ++i) {
    Napi::Object h = headers.Get(i).As<Napi::Object>();
    pj_str_t name = pool_str(pool, get_str(h, "name"));
    pj_str_t value = pool_str(pool, get_str(h, "value"));
    pj_list_push_back(list, pjsip_generic_string_hdr_create(pool, &name, &value));
  }
}

// "type/subtype;k=v;k2=v2" -> body with that content type.
pjsip_msg_body* make_body(Napi::Env env, pj_pool_t* pool, const std::string& ctype, const std::string& text) {
  std::string main = ctype.substr(0, ctype.find(';'));
  size_t slash = main.find('/');
  if (slash == std::string::npos) throw Napi::TypeError::New(env, "bad content type: " + ctype);
  auto trim = [](std::string v) {
    v.erase(0, v.find_first_not_of(" \t"));
    v.erase(v.find_last_not_of(" \t") + 1);
    return v;
  };
  pj_str_t type = pool_str(pool, trim(main.substr(0, slash)));
  pj_str_t sub = pool_str(pool, trim(main.substr(slash + 1)));
  pj_str_t body = pool_str(pool, text);
  pjsip_msg_body* b = pjsip_msg_body_create(pool, &type, &sub, &body);
  size_t pos = ctype.find(';');
  while (pos != std::string::npos) {
    size_t next = ctype.find(';', pos + 1);
    std::string kv = trim(ctype.substr(pos + 1, next == std::string::npos ? std::string::npos : next - pos - 1));
    size_t eq = kv.find('=');
    if (!kv.empty()) {
      auto* p = PJ_POOL_ZALLOC_T(pool, pjsip_param);
      p->name = pool_str(pool, trim(kv.substr(0, eq)));
      if (eq != std::string::npos) p->value = pool_str(pool, trim(kv.substr(eq + 1)));
      pj_list_push_back(&b->content_type.param, p);
    }
    pos = next;
  }
  return b;
}

// makeCall(accountId, target, { headers, parts, from, requestUri }) -> callId
// Synchronous: returns once the INVITE has been handed to the transport.
Napi::Value MakeCall(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_running(env);
  int acc = get_acc_id(info, 0);
  if (info.Length() < 2 || !info[1].IsString()) throw Napi::TypeError::New(env, "target must be a string");
  std::string target = info[1].As<Napi::String>().Utf8Value();
  Napi::Object o = info.Length() > 2 && info[2].IsObject() ? info[2].As<Napi::Object>() : Napi::Object::New(env);

  const uint64_t t0 = uv_hrtime();
  const ThreadUsage u0;
  uint64_t t1 = t0;
  double cpu1 = 0, cpu2 = 0;
  pj_pool_t* pool = pjsua_pool_create("e911-call", 1024, 1024);
  pjsua_call_id call_id = PJSUA_INVALID_ID;
  pj_status_t st;
  void* user_data = nullptr;
  try {
    pjsua_msg_data md;
    pjsua_msg_data_init(&md);
    add_headers(pool, &md.hdr_list, get_arr(o, "headers"));
    std::string from = get_str(o, "from"), ruri = get_str(o, "requestUri");
    if (!from.empty()) md.local_uri = pool_str(pool, from);
    if (!ruri.empty()) md.target_uri = pool_str(pool, ruri);
    Napi::Array parts = get_arr(o, "parts");
    if (parts.Length() > 0) {
      // pjsua puts these parts first and appends its SDP as the last part.
      pj_str_t mp = pj_str(const_cast<char*>("multipart")), mixed = pj_str(const_cast<char*>("mixed"));
      pjsip_media_type_init(&md.multipart_ctype, &mp, &mixed);
      for (uint32_t i = 0; i < parts.Length(); ++i) {
        Napi::Object p = parts.Get(i).As<Napi::Object>();
        pjsip_multipart_part* part = pjsip_multipart_create_part(pool);
        part->body = make_body(env, pool, get_str(p, "contentType"), get_str(p, "body"));
        add_headers(pool, &part->hdr, get_arr(p, "headers"));
        pj_list_push_back(&md.multipart_parts, part);
      }
    }
    // The audio m-line's extra attributes (RFC 8373 hlang-send/hlang-recv): added when pjsua
    // makes the offer, inside make_call, by on_call_sdp_created (it finds them as the call's user data).
    Napi::Array attrs = get_arr(o, "audioAttributes");
    if (attrs.Length() > 0) {
      auto sdp = std::make_unique<CallSdp>();
      for (uint32_t i = 0; i < attrs.Length(); ++i) {
        Napi::Object a = attrs.Get(i).As<Napi::Object>();
        std::string name = get_str(a, "name"), value = get_str(a, "value");
        const bool token = !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
          return std::isalnum(c) || c == '-' || c == '_' || c == '.';
        });
        if (!token) throw Napi::TypeError::New(env, "SDP attribute name must be a token: " + name);
        if (value.find_first_of(std::string("\r\n\0", 3)) != std::string::npos)
          throw Napi::TypeError::New(env, "SDP attribute value must be one line: " + name);
        sdp->audioAttributes.emplace_back(std::move(name), std::move(value));
      }
      user_data = register_call_sdp(sdp.release());
    }
    pjsua_call_setting opt;
    call_setting(&opt);
    pj_str_t dst = pool_str(pool, target);
    // pjsua clones msg_data, so the pool can go right after.
    t1 = uv_hrtime();
    cpu1 = thread_cpu_ms();
    st = pjsua_call_make_call(acc, &dst, &opt, user_data, &md, &call_id);
    cpu2 = thread_cpu_ms();
  } catch (...) {
    pj_pool_release(pool);
    if (user_data) release_call_sdp(user_data);
    throw;
  }
  pj_pool_release(pool);
  // No call, no DISCONNECTED to free them.
  if (st != PJ_SUCCESS && user_data) release_call_sdp(user_data);
  const uint64_t t2 = uv_hrtime();
  const ThreadUsage u1;
  g_last_call_timing.prepareMs = static_cast<double>(t1 - t0) / 1e6;
  g_last_call_timing.pjsuaMs = static_cast<double>(t2 - t1) / 1e6;
  g_last_call_timing.pjsuaCpuMs = cpu2 - cpu1;
  g_last_call_timing.voluntarySwitches = u1.ru.ru_nvcsw - u0.ru.ru_nvcsw;
  g_last_call_timing.involuntarySwitches = u1.ru.ru_nivcsw - u0.ru.ru_nivcsw;
  g_last_call_timing.minorFaults = u1.ru.ru_minflt - u0.ru.ru_minflt;
  check(env, st, "pjsua_call_make_call");
  return Napi::Number::New(env, call_id);
}

Napi::Value Answer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_running(env);
  int call = get_call_id(info, 0);
  unsigned code = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 200;
  std::string reason = info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
  pj_str_t r = pj_str(const_cast<char*>(reason.c_str()));
  pjsua_call_setting opt;
  call_setting(&opt);
  check(env, pjsua_call_answer2(call, &opt, code, reason.empty() ? nullptr : &r, nullptr), "pjsua_call_answer2");
  return env.Undefined();
}

Napi::Value Hangup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_running(env);
  int call = get_call_id(info, 0);
  unsigned code = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 0;
  std::string reason = info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
  pj_str_t r = pj_str(const_cast<char*>(reason.c_str()));
  check(env, pjsua_call_hangup(call, code, reason.empty() ? nullptr : &r, nullptr), "pjsua_call_hangup");
  return env.Undefined();
}

Napi::Value HangupAll(const Napi::CallbackInfo& info) {
  require_running(info.Env());
  pjsua_call_hangup_all();
  return info.Env().Undefined();
}

Napi::Value Hold(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_running(env);
  check(env, pjsua_call_set_hold(get_call_id(info, 0), nullptr), "pjsua_call_set_hold");
  return env.Undefined();
}

Napi::Value Unhold(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_running(env);
  check(env, pjsua_call_reinvite(get_call_id(info, 0), PJSUA_CALL_UNHOLD, nullptr), "pjsua_call_reinvite(unhold)");
  return env.Undefined();
}

// sendDtmf(callId, digits, method 'rfc2833'|'info', durationMs?)
Napi::Value SendDtmf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_running(env);
  int call = get_call_id(info, 0);
  if (info.Length() < 2 || !info[1].IsString()) throw Napi::TypeError::New(env, "digits must be a string");
  std::string digits = info[1].As<Napi::String>().Utf8Value();
  std::string method = info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "rfc2833";
  pjsua_call_send_dtmf_param p;
  pjsua_call_send_dtmf_param_default(&p);
  p.method = method == "info" ? PJSUA_DTMF_METHOD_SIP_INFO : PJSUA_DTMF_METHOD_RFC2833;
  if (info.Length() > 3 && info[3].IsNumber()) p.duration = info[3].As<Napi::Number>().Uint32Value();
  p.digits = pj_str(const_cast<char*>(digits.c_str()));
  check(env, pjsua_call_send_dtmf(call, &p), "pjsua_call_send_dtmf");
  return env.Undefined();
}

// playFile(callId, path, { loop }) -> playbackId: a WAV file (16-bit PCM
// mono) into the call, from its start; "playback" events count its plays.
Napi::Value PlayFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_running(env);
  int call = get_call_id(info, 0);
  if (info.Length() < 2 || !info[1].IsString()) throw Napi::TypeError::New(env, "path must be a string");
  std::string file = info[1].As<Napi::String>().Utf8Value();
  bool loop = info.Length() > 2 && info[2].IsObject() ? get_bool(info[2].As<Napi::Object>(), "loop", false) : false;
  pjsua_player_id id = PJSUA_INVALID_ID;
  check(env, start_playback(call, file, loop, &id), "playFile(" + file + ")");
  return Napi::Number::New(env, id);
}

Napi::Value StopPlayback(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_running(env);
  pj_status_t st = stop_playback(get_id(info, 0));
  // Already gone (its call ended first): nothing to stop.
  if (st != PJ_ENOTFOUND) check(env, st, "stopPlayback");
  return env.Undefined();
}

Napi::Value CallInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  require_running(env);
  pjsua_call_info ci;
  check(env, pjsua_call_get_info(get_call_id(info, 0), &ci), "pjsua_call_get_info");
  Napi::Object o = Napi::Object::New(env);
  o.Set("callId", ci.id);
  o.Set("accountId", ci.acc_id);
  o.Set("role", ci.role == PJSIP_ROLE_UAC ? "caller" : "callee");
  o.Set("state", call_state_name(ci.state));
  o.Set("lastStatusCode", static_cast<int>(ci.last_status));
  o.Set("lastStatusReason", to_string(ci.last_status_text));
  o.Set("sipCallId", to_string(ci.call_id));
  o.Set("localUri", to_string(ci.local_info));
  o.Set("remoteUri", to_string(ci.remote_info));
  o.Set("mediaStatus", media_status_name(ci.media_status));
  o.Set("connectDurationMs", PJ_TIME_VAL_MSEC(ci.connect_duration));
  return o;
}

Napi::Value Version(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), pj_get_version()); }

Napi::Value LastMakeCallTiming(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("prepareMs", g_last_call_timing.prepareMs);
  o.Set("pjsuaMs", g_last_call_timing.pjsuaMs);
  o.Set("pjsuaCpuMs", g_last_call_timing.pjsuaCpuMs);
  o.Set("voluntarySwitches", static_cast<double>(g_last_call_timing.voluntarySwitches));
  o.Set("involuntarySwitches", static_cast<double>(g_last_call_timing.involuntarySwitches));
  o.Set("minorFaults", static_cast<double>(g_last_call_timing.minorFaults));
  return o;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("start", Napi::Function::New(env, Start));
  exports.Set("stop", Napi::Function::New(env, Stop));
  exports.Set("shutdownNow", Napi::Function::New(env, ShutdownNow));
  exports.Set("addAccount", Napi::Function::New(env, AddAccount));
  exports.Set("setRegistration", Napi::Function::New(env, SetRegistration));
  exports.Set("removeAccount", Napi::Function::New(env, RemoveAccount));
  exports.Set("accountInfo", Napi::Function::New(env, AccountInfo));
  exports.Set("makeCall", Napi::Function::New(env, MakeCall));
  exports.Set("answer", Napi::Function::New(env, Answer));
  exports.Set("hangup", Napi::Function::New(env, Hangup));
  exports.Set("hangupAll", Napi::Function::New(env, HangupAll));
  exports.Set("hold", Napi::Function::New(env, Hold));
  exports.Set("unhold", Napi::Function::New(env, Unhold));
  exports.Set("sendDtmf", Napi::Function::New(env, SendDtmf));
  exports.Set("callInfo", Napi::Function::New(env, CallInfo));
  exports.Set("playFile", Napi::Function::New(env, PlayFile));
  exports.Set("stopPlayback", Napi::Function::New(env, StopPlayback));
  exports.Set("version", Napi::Function::New(env, Version));
  exports.Set("lastMakeCallTiming", Napi::Function::New(env, LastMakeCallTiming));
  exports.Set("mapShared", Napi::Function::New(env, MapShared));
  exports.Set("unmapShared", Napi::Function::New(env, UnmapShared));
  // If the environment goes away (worker exit) under a running stack, stop
  // pjsua's threads before they can touch a dead ThreadSafeFunction.
  env.AddCleanupHook([]() {
    {
      std::lock_guard<std::mutex> lk(g_mu);
      g_live = false;  // the TSFN dies with the environment
    }
    if (g_state == State::Running) {
      destroy_now();
      g_state = State::Idle;
    }
  });
  return exports;
}

void emit(Event* ev) {
  std::lock_guard<std::mutex> lk(g_mu);
  // NonBlockingCall never waits: a PJSIP thread must not block on JS.
  if (!g_live || g_tsfn.NonBlockingCall(ev, deliver) != napi_ok) delete ev;
}

}  // namespace e911voice

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return e911voice::Init(env, exports); }
NODE_API_MODULE(e911_voice, InitModule)
