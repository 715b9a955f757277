// pjsua-lib callbacks. They run on PJSIP threads (or on the JS thread inside
// a pjsua call): copy what is needed into an Event, emit it, return. Never
// block here and never call into JS.
// Over 400 lines: every pjsua callback and the per-call media and playback state they share
// (the sound device, SDP, players); split, that state would be reached across files.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "voice.h"

namespace e911voice {

CallbackOptions g_cbopts;
MediaOptions g_media;

namespace {

// The configured sound device failed (missing or busy): the null device
// stands in, and the next call tries the real one again.
bool g_sound_fallback = false;

// What a call's media did, kept from its streams' end to its DISCONNECTED.
struct CallMedia {
  pjsua_recorder_id recorder = PJSUA_INVALID_ID;
  std::string recording;
  unsigned streams = 0;
  double txPkt = 0, rxPkt = 0, rxLoss = 0, txLoss = 0, jitterMeanUs = 0, jitterMaxUs = 0;
};
std::mutex g_media_mu;  // media callbacks run on SIP, media and JS threads
CallMedia g_call_media[PJSUA_MAX_CALLS];

// WAV playbacks into calls (playFile): which call each player feeds and how
// many times it has played the file through. Indexed by pjsua player id.
struct Playback {
  bool active = false;
  pjsua_call_id call = PJSUA_INVALID_ID;
  unsigned plays = 0;
};
Playback g_playbacks[PJSUA_MAX_PLAYERS];

pjsua_conf_port_id g_tone_slot = PJSUA_INVALID_ID;
pjmedia_port* g_tone_port = nullptr;
pj_pool_t* g_tone_pool = nullptr;

std::string pj_error(pj_status_t st) {
  char buf[PJ_ERR_MSG_SIZE];
  pj_strerror(st, buf, sizeof(buf));
  return buf;
}

void emit_sound_event(bool ok, const char* phase, const std::string& reason, pjsua_call_id call_id) {
  auto* ev = new Event("soundDevice");
  ev->flag("ok", ok).str("phase", phase).str("capture", g_media.capture).str("playback", g_media.playback);
  if (!reason.empty()) ev->str("reason", reason);
  if (call_id != PJSUA_INVALID_ID) ev->num("callId", call_id);
  emit(ev);
}

// Call-ID as a file name: letters, digits, '-', '.', '_' only.
std::string file_safe(std::string s) {
  for (auto& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') c = '_';
  return s;
}

// Connects a call's audio to the sound device (or the null device, whose
// clock keeps the conference bridge, and so RTP and DTMF, running). A device
// that cannot be opened now (unplugged, held by another program) never
// silences the call's RTP: the null device takes over and the failure is
// reported.
void connect_call_audio(pjsua_call_id call_id, pjsua_conf_port_id slot) {
  // The device failed before: this call tries it again (the only call: a
  // device switch under another call would cut it), and says how it went.
  if (!g_media.nullSound && g_sound_fallback && pjsua_call_get_count() <= 1) {
    std::string why = select_sound_device();
    emit_sound_event(why.empty(), "call", why, call_id);
  }
  pj_status_t st = pjsua_conf_connect(slot, 0);
  if (st == PJ_SUCCESS) st = pjsua_conf_connect(0, slot);
  if (st != PJ_SUCCESS && !g_media.nullSound) {
    std::string why = "cannot open the sound device for the call: " + pj_error(st);
    pjsua_set_null_snd_dev();
    g_sound_fallback = true;
    pjsua_conf_connect(slot, 0);
    pjsua_conf_connect(0, slot);
    emit_sound_event(false, "call", why, call_id);
  }
  // Audio test mode: our tone goes out, what arrives is recorded.
  if (g_tone_slot != PJSUA_INVALID_ID) pjsua_conf_connect(g_tone_slot, slot);
  if (!g_media.recordDir.empty() && call_id >= 0 && call_id < static_cast<int>(PJSUA_MAX_CALLS)) {
    pjsua_recorder_id rec;
    {
      std::lock_guard<std::mutex> lk(g_media_mu);
      rec = g_call_media[call_id].recorder;
    }
    if (rec == PJSUA_INVALID_ID) {
      pjsua_call_info ci;
      if (pjsua_call_get_info(call_id, &ci) != PJ_SUCCESS) return;
      std::string name = g_media.recordDir + "/" + file_safe(to_string(ci.call_id)) + ".wav";
      pj_str_t file = pj_str(const_cast<char*>(name.c_str()));
      if (pjsua_recorder_create(&file, 0, nullptr, -1, 0, &rec) != PJ_SUCCESS) return;
      std::lock_guard<std::mutex> lk(g_media_mu);
      g_call_media[call_id].recorder = rec;
      g_call_media[call_id].recording = name;
    }
    pjsua_conf_connect(slot, pjsua_recorder_get_conf_port(rec));
  }
}

// Adds the call's media figures (and its recording, closed first so the WAV
// is complete) to its DISCONNECTED event, then forgets them.
void finish_call_media(pjsua_call_id call_id, Event* ev) {
  if (call_id < 0 || call_id >= static_cast<int>(PJSUA_MAX_CALLS)) return;
  CallMedia m;
  {
    std::lock_guard<std::mutex> lk(g_media_mu);
    m = g_call_media[call_id];
    g_call_media[call_id] = CallMedia();
  }
  if (m.recorder != PJSUA_INVALID_ID) pjsua_recorder_destroy(m.recorder);
  if (!m.recording.empty()) ev->str("recording", m.recording);
  stop_call_playbacks(call_id);
  if (m.streams == 0) return;
  ev->num("rtpSent", m.txPkt)
      .num("rtpReceived", m.rxPkt)
      .num("rtpLost", m.rxLoss)
      .num("rtpLostByPeer", m.txLoss)
      .num("jitterMs", m.jitterMeanUs / 1000.0)
      .num("jitterMaxMs", m.jitterMaxUs / 1000.0);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool wanted_header(const pjsip_hdr* h) {
  std::string name = lower(to_string(h->name));
  std::string sname = lower(to_string(h->sname));
  for (const auto& w : g_cbopts.incomingHeaders) {
    if (w == name || (!sname.empty() && w == sname)) return true;
  }
  return false;
}

// The headers of interest of a request, each printed as on the wire.
HeaderList collect_headers(const pjsip_msg* msg) {
  HeaderList out;
  char buf[2048];
  for (const pjsip_hdr* h = msg->hdr.next; h != &msg->hdr; h = h->next) {
    if (!wanted_header(h)) continue;
    int len = pjsip_hdr_print_on(const_cast<pjsip_hdr*>(h), buf, sizeof(buf) - 1);
    if (len <= 0) continue;  // too long to print: skip rather than truncate
    std::string line(buf, static_cast<size_t>(len));
    size_t colon = line.find(':');
    std::string value = colon == std::string::npos ? line : line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    out.emplace_back(to_string(h->name), value);
  }
  return out;
}

void on_reg_state2(pjsua_acc_id acc_id, pjsua_reg_info* info) {
  auto* ev = new Event("registration");
  ev->num("accountId", acc_id);
  const pjsip_regc_cbparam* p = info ? info->cbparam : nullptr;
  int code = p ? p->code : 0;
  ev->num("code", code);
  ev->str("reason", p ? to_string(p->reason) : std::string());
  ev->num("expires", p && p->expiration != PJSIP_REGC_EXPIRATION_NOT_SPECIFIED ? p->expiration : 0);
  ev->flag("renew", info && info->renew);
  if (p && p->status != PJ_SUCCESS) {
    char err[PJ_ERR_MSG_SIZE];
    pj_strerror(p->status, err, sizeof(err));
    ev->str("error", err);
  }
  // Registered means a 2xx to a REGISTER that asked for a binding.
  ev->flag("registered", info && info->renew && code / 100 == 2 && p && p->expiration > 0 &&
                             p->expiration != PJSIP_REGC_EXPIRATION_NOT_SPECIFIED);
  emit(ev);
}

void on_incoming_call(pjsua_acc_id acc_id, pjsua_call_id call_id, pjsip_rx_data* rdata) {
  pjsua_call_info ci;
  reset_call_media(call_id);
  auto* ev = new Event("incomingCall");
  ev->num("callId", call_id).num("accountId", acc_id);
  if (pjsua_call_get_info(call_id, &ci) == PJ_SUCCESS) {
    ev->str("remoteUri", ci.remote_info).str("localUri", ci.local_info).str("sipCallId", ci.call_id);
  }
  ev->headers("headers", rdata && rdata->msg_info.msg ? collect_headers(rdata->msg_info.msg) : HeaderList());
  // Where the packet came from, as the socket saw it: unlike Via, From or
  // Contact, the sender cannot write this (the PSAP callback rule uses it).
  if (rdata) {
    ev->str("sourceAddress", std::string(rdata->pkt_info.src_name)).num("sourcePort", rdata->pkt_info.src_port);
    const pjsip_transport* tp = rdata->tp_info.transport;
    if (tp) {
      std::string kind = lower(tp->type_name ? tp->type_name : "");
      bool secure = (pjsip_transport_get_flag_from_type(static_cast<pjsip_transport_type_e>(tp->key.type)) &
                     PJSIP_TRANSPORT_SECURE) != 0;
      ev->str("transport", kind);
      // A TLS connection the phone opened with certificate checks on: pjsip
      // shuts it down when the certificate does not match the name dialed.
      ev->flag("tlsVerified", secure && tp->dir == PJSIP_TP_DIR_OUTGOING && g_cbopts.tlsVerifyServer);
    }
  }
  ev->flag("autoAnswered", g_cbopts.autoAnswer);
  // Emit before answering so JS sees the call before its state changes.
  emit(ev);
  if (g_cbopts.autoAnswer) {
    pjsua_call_setting opt;
    call_setting(&opt);
    pjsua_call_answer2(call_id, &opt, 200, nullptr, nullptr);
  }
}

std::mutex g_sdp_mu;  // SDP is made on SIP and JS threads; DISCONNECTED may come on either
std::unordered_map<void*, std::unique_ptr<CallSdp>> g_call_sdp;

// Every offer and answer pjsua makes for a call passes here: the call's audio attributes
// go on its first audio m-line (re-INVITEs too, so hold does not drop the language).
void on_call_sdp_created(pjsua_call_id call_id, pjmedia_sdp_session* sdp, pj_pool_t* pool, const pjmedia_sdp_session* /*rem_sdp*/) {
  void* key = pjsua_call_get_user_data(call_id);
  if (!key) return;
  std::lock_guard<std::mutex> lk(g_sdp_mu);
  auto it = g_call_sdp.find(key);
  if (it == g_call_sdp.end()) return;
  for (unsigned i = 0; i < sdp->media_count; ++i) {
    pjmedia_sdp_media* m = sdp->media[i];
    if (pj_strcmp2(&m->desc.media, "audio") != 0) continue;
    for (const auto& [name, value] : it->second->audioAttributes) {
      // pjmedia copies both into the pool.
      pj_str_t v = pj_str(const_cast<char*>(value.c_str()));
      pjmedia_sdp_attr* a = pjmedia_sdp_attr_create(pool, name.c_str(), value.empty() ? nullptr : &v);
      pjmedia_sdp_media_add_attr(m, a);
    }
    break;
  }
}

void forget_call_sdp(pjsua_call_id call_id) {
  void* key = pjsua_call_get_user_data(call_id);
  if (key) release_call_sdp(key);
}

void on_call_state(pjsua_call_id call_id, pjsip_event* e) {
  pjsua_call_info ci;
  if (pjsua_call_get_info(call_id, &ci) != PJ_SUCCESS) return;
  auto* ev = new Event("callState");
  ev->num("callId", call_id)
      .num("accountId", ci.acc_id)
      .str("state", call_state_name(ci.state))
      .num("lastStatusCode", ci.last_status)
      .str("lastStatusReason", ci.last_status_text)
      .str("sipCallId", ci.call_id)
      .str("remoteUri", ci.remote_info)
      .str("role", ci.role == PJSIP_ROLE_UAC ? "caller" : "callee");
  // A transport failure (refused connection, unreachable host) ends the
  // call with pjsip's 503/408; say so explicitly for the failover logic.
  if (ci.state == PJSIP_INV_STATE_DISCONNECTED && e && e->type == PJSIP_EVENT_TSX_STATE) {
    ev->flag("transportError", e->body.tsx_state.type == PJSIP_EVENT_TRANSPORT_ERROR);
  }
  if (ci.state == PJSIP_INV_STATE_DISCONNECTED) {
    finish_call_media(call_id, ev);
    forget_call_sdp(call_id);
  }
  emit(ev);
}

void on_call_tsx_state(pjsua_call_id call_id, pjsip_transaction* tsx, pjsip_event* e) {
  // Every response to an INVITE we sent, 100 Trying included: the emergency
  // logic times "first provisional response" from these.
  if (tsx->role != PJSIP_ROLE_UAC || pjsip_method_cmp(&tsx->method, pjsip_get_invite_method()) != 0) return;
  if (e->type != PJSIP_EVENT_TSX_STATE || e->body.tsx_state.type != PJSIP_EVENT_RX_MSG) return;
  pjsip_rx_data* rdata = e->body.tsx_state.src.rdata;
  if (!rdata || !rdata->msg_info.msg || rdata->msg_info.msg->type != PJSIP_RESPONSE_MSG) return;
  const pjsip_status_line& sl = rdata->msg_info.msg->line.status;
  auto* ev = new Event("inviteResponse");
  ev->num("callId", call_id)
      .num("code", sl.code)
      .str("reason", sl.reason)
      .num("cseq", rdata->msg_info.cseq ? rdata->msg_info.cseq->cseq : 0)
      .str("sipCallId", rdata->msg_info.cid ? to_string(rdata->msg_info.cid->id) : std::string());
  emit(ev);
}

void on_call_media_state(pjsua_call_id call_id) {
  pjsua_call_info ci;
  if (pjsua_call_get_info(call_id, &ci) != PJ_SUCCESS) return;
  if (ci.media_status == PJSUA_CALL_MEDIA_ACTIVE || ci.media_status == PJSUA_CALL_MEDIA_REMOTE_HOLD) {
    if (ci.conf_slot != PJSUA_INVALID_ID) connect_call_audio(call_id, ci.conf_slot);
  }
  auto* ev = new Event("mediaState");
  ev->num("callId", call_id).str("status", media_status_name(ci.media_status));
  emit(ev);
}

// A stream ends (call over, or media renegotiated): add its RTP figures to
// the call's totals before pjsua frees it.
void on_stream_destroyed(pjsua_call_id call_id, pjmedia_stream* strm, unsigned stream_idx) {
  pjmedia_rtcp_stat st;
  if (call_id < 0 || call_id >= static_cast<int>(PJSUA_MAX_CALLS) || pjmedia_stream_get_stat(strm, &st) != PJ_SUCCESS) return;
  std::lock_guard<std::mutex> lk(g_media_mu);
  CallMedia& m = g_call_media[call_id];
  m.streams++;
  m.txPkt += st.tx.pkt;
  m.rxPkt += st.rx.pkt;
  m.rxLoss += st.rx.loss;
  m.txLoss += st.tx.loss;
  if (st.rx.jitter.n > 0) {
    m.jitterMeanUs = std::max(m.jitterMeanUs, static_cast<double>(st.rx.jitter.mean));
    m.jitterMaxUs = std::max(m.jitterMaxUs, static_cast<double>(st.rx.jitter.max));
  }
}

void on_dtmf_digit2(pjsua_call_id call_id, const pjsua_dtmf_info* info) {
  auto* ev = new Event("dtmf");
  char digit[2] = {static_cast<char>(info->digit), 0};
  ev->num("callId", call_id)
      .str("digit", digit)
      .str("method", info->method == PJSUA_DTMF_METHOD_SIP_INFO ? "info" : "rfc2833");
  if (info->duration != PJSUA_UNKNOWN_DTMF_DURATION) ev->num("durationMs", info->duration);
  emit(ev);
}

// End of the file (media thread): count the play and tell JS. A looping
// player rewinds by itself; a one-shot player has stopped.
void on_player_eof(pjmedia_port*, void* user_data) {
  auto id = static_cast<pjsua_player_id>(reinterpret_cast<intptr_t>(user_data));
  if (id < 0 || id >= static_cast<int>(PJSUA_MAX_PLAYERS)) return;
  unsigned plays;
  pjsua_call_id call;
  {
    std::lock_guard<std::mutex> lk(g_media_mu);
    if (!g_playbacks[id].active) return;
    plays = ++g_playbacks[id].plays;
    call = g_playbacks[id].call;
  }
  auto* ev = new Event("playback");
  ev->num("playbackId", id).num("callId", call).num("plays", plays);
  emit(ev);
}

}  // namespace

pj_status_t start_playback(pjsua_call_id call_id, const std::string& file, bool loop, pjsua_player_id* out) {
  pjsua_call_info ci;
  pj_status_t st = pjsua_call_get_info(call_id, &ci);
  if (st != PJ_SUCCESS) return st;
  if (ci.conf_slot == PJSUA_INVALID_ID) return PJ_EINVALIDOP;  // no active media yet
  pj_str_t name = pj_str(const_cast<char*>(file.c_str()));
  pjsua_player_id id;
  st = pjsua_player_create(&name, loop ? 0 : PJMEDIA_FILE_NO_LOOP, &id);
  if (st != PJ_SUCCESS) return st;
  {
    std::lock_guard<std::mutex> lk(g_media_mu);
    g_playbacks[id] = Playback{true, call_id, 0};
  }
  pjmedia_port* port = nullptr;
  st = pjsua_player_get_port(id, &port);
  if (st == PJ_SUCCESS) st = pjmedia_wav_player_set_eof_cb2(port, reinterpret_cast<void*>(static_cast<intptr_t>(id)), &on_player_eof);
  if (st == PJ_SUCCESS) st = pjsua_conf_connect(pjsua_player_get_conf_port(id), ci.conf_slot);
  if (st != PJ_SUCCESS) {
    stop_playback(id);
    return st;
  }
  *out = id;
  return PJ_SUCCESS;
}

pj_status_t stop_playback(pjsua_player_id id) {
  if (id < 0 || id >= static_cast<int>(PJSUA_MAX_PLAYERS)) return PJ_EINVAL;
  {
    std::lock_guard<std::mutex> lk(g_media_mu);
    if (!g_playbacks[id].active) return PJ_ENOTFOUND;
    g_playbacks[id] = Playback();
  }
  return pjsua_player_destroy(id);
}

void stop_call_playbacks(pjsua_call_id call_id) {
  for (int id = 0; id < static_cast<int>(PJSUA_MAX_PLAYERS); ++id) {
    bool mine;
    {
      std::lock_guard<std::mutex> lk(g_media_mu);
      mine = g_playbacks[id].active && g_playbacks[id].call == call_id;
    }
    if (mine) stop_playback(id);
  }
}

void reset_playbacks() {
  std::lock_guard<std::mutex> lk(g_media_mu);
  for (auto& p : g_playbacks) p = Playback();
}

void install_callbacks(pjsua_callback* cb) {
  cb->on_reg_state2 = &on_reg_state2;
  cb->on_incoming_call = &on_incoming_call;
  cb->on_call_state = &on_call_state;
  cb->on_call_tsx_state = &on_call_tsx_state;
  cb->on_call_media_state = &on_call_media_state;
  cb->on_dtmf_digit2 = &on_dtmf_digit2;
  cb->on_stream_destroyed = &on_stream_destroyed;
  cb->on_call_sdp_created = &on_call_sdp_created;
}

void* register_call_sdp(CallSdp* sdp) {
  std::lock_guard<std::mutex> lk(g_sdp_mu);
  g_call_sdp.emplace(sdp, std::unique_ptr<CallSdp>(sdp));
  return sdp;
}

void release_call_sdp(void* user_data) {
  std::lock_guard<std::mutex> lk(g_sdp_mu);
  g_call_sdp.erase(user_data);
}

void reset_call_media(pjsua_call_id call_id) {
  if (call_id < 0 || call_id >= static_cast<int>(PJSUA_MAX_CALLS)) return;
  pjsua_recorder_id stale;
  {
    std::lock_guard<std::mutex> lk(g_media_mu);
    stale = g_call_media[call_id].recorder;
    g_call_media[call_id] = CallMedia();
  }
  if (stale != PJSUA_INVALID_ID) pjsua_recorder_destroy(stale);
}

std::string select_sound_device() {
  if (g_media.nullSound) {
    g_sound_fallback = false;
    pjsua_set_null_snd_dev();
    return "";
  }
  pjmedia_aud_dev_info info[64];
  unsigned n = PJ_ARRAY_SIZE(info);
  if (pjsua_enum_aud_devs(info, &n) != PJ_SUCCESS) n = 0;
  int cap = PJMEDIA_AUD_INVALID_DEV, play = PJMEDIA_AUD_INVALID_DEV;
  std::string names;
  for (unsigned i = 0; i < n; ++i) {
    names += (names.empty() ? "" : ", ") + std::string(info[i].name);
    if (cap == PJMEDIA_AUD_INVALID_DEV && info[i].input_count > 0 && g_media.capture == info[i].name) cap = static_cast<int>(i);
    if (play == PJMEDIA_AUD_INVALID_DEV && info[i].output_count > 0 && g_media.playback == info[i].name) play = static_cast<int>(i);
  }
  std::string why;
  if (cap == PJMEDIA_AUD_INVALID_DEV) why = "no capture device named \"" + g_media.capture + "\"";
  if (play == PJMEDIA_AUD_INVALID_DEV) why += (why.empty() ? "" : "; ") + std::string("no playback device named \"") + g_media.playback + "\"";
  if (why.empty()) {
    pjsua_snd_dev_param p;
    pjsua_snd_dev_param_default(&p);
    p.capture_dev = cap;
    p.playback_dev = play;
    pj_status_t st = pjsua_set_snd_dev2(&p);  // opens it now: a busy device shows here
    if (st != PJ_SUCCESS) why = "cannot open the sound device: " + pj_error(st);
  }
  if (why.empty()) {
    g_sound_fallback = false;
    return "";
  }
  why += " (devices: " + (names.empty() ? std::string("none") : names) + ")";
  pjsua_set_null_snd_dev();
  g_sound_fallback = true;
  return why;
}

void prefer_g711() {
  pjsua_codec_info ci[64];
  unsigned n = PJ_ARRAY_SIZE(ci);
  if (pjsua_enum_codecs(ci, &n) != PJ_SUCCESS) return;
  for (unsigned i = 0; i < n; ++i) {
    std::string id = to_string(ci[i].codec_id);
    // Every PSAP and carrier takes G.711; the rest stay offered, after it
    // (priority 0 would disable a codec: keep the disabled ones disabled).
    pj_uint8_t prio = id.rfind("PCMU/", 0) == 0   ? 255
                      : id.rfind("PCMA/", 0) == 0 ? 254
                                                  : std::min<pj_uint8_t>(ci[i].priority, PJMEDIA_CODEC_PRIO_NORMAL);
    pjsua_codec_set_priority(&ci[i].codec_id, prio);
  }
}

pj_status_t start_test_tone() {
  if (g_media.toneHz == 0) return PJ_SUCCESS;
  g_tone_pool = pjsua_pool_create("e911-tone", 1024, 1024);
  unsigned spf = g_media.clockRate * g_media.ptimeMs / 1000;
  pj_status_t st = pjmedia_tonegen_create(g_tone_pool, g_media.clockRate, 1, spf, 16, 0, &g_tone_port);
  if (st != PJ_SUCCESS) return st;
  pjmedia_tone_desc d;
  pj_bzero(&d, sizeof(d));
  d.freq1 = static_cast<short>(g_media.toneHz);
  d.on_msec = static_cast<short>(g_media.toneOnMs);
  d.off_msec = static_cast<short>(g_media.toneOffMs);
  st = pjmedia_tonegen_play(g_tone_port, 1, &d, PJMEDIA_TONEGEN_LOOP);
  if (st != PJ_SUCCESS) return st;
  return pjsua_conf_add_port(g_tone_pool, g_tone_port, &g_tone_slot);
}

void stop_test_tone() {
  if (g_tone_slot != PJSUA_INVALID_ID) pjsua_conf_remove_port(g_tone_slot);
  if (g_tone_port) pjmedia_port_destroy(g_tone_port);
  if (g_tone_pool) pj_pool_release(g_tone_pool);
  g_tone_slot = PJSUA_INVALID_ID;
  g_tone_port = nullptr;
  g_tone_pool = nullptr;
}

void log_writer(int level, const char* data, int len) {
  // pjsip may end lines with a newline; strip trailing whitespace.
  while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r' || data[len - 1] == ' ')) --len;
  if (len <= 0) return;
  auto* ev = new Event("log");
  ev->num("level", level).str("message", std::string(data, static_cast<size_t>(len)));
  emit(ev);
}

}  // namespace e911voice
