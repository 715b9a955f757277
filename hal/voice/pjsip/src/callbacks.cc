// pjsua-lib callbacks. They run on PJSIP threads (or on the JS thread inside
// a pjsua call): copy what is needed into an Event, emit it, return. Never
// block here and never call into JS.
#include <algorithm>
#include <cctype>
#include <cstring>

#include "voice.h"

namespace e911voice {

CallbackOptions g_cbopts;

namespace {

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
  auto* ev = new Event("incomingCall");
  ev->num("callId", call_id).num("accountId", acc_id);
  if (pjsua_call_get_info(call_id, &ci) == PJ_SUCCESS) {
    ev->str("remoteUri", ci.remote_info).str("localUri", ci.local_info).str("sipCallId", ci.call_id);
  }
  ev->headers("headers", rdata && rdata->msg_info.msg ? collect_headers(rdata->msg_info.msg) : HeaderList());
  ev->flag("autoAnswered", g_cbopts.autoAnswer);
  // Emit before answering so JS sees the call before its state changes.
  emit(ev);
  if (g_cbopts.autoAnswer) {
    pjsua_call_setting opt;
    call_setting(&opt);
    pjsua_call_answer2(call_id, &opt, 200, nullptr, nullptr);
  }
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
  // Connect the call to the sound device (or the null device, whose clock
  // keeps the conference bridge, and so RTP and DTMF, running).
  if (ci.media_status == PJSUA_CALL_MEDIA_ACTIVE || ci.media_status == PJSUA_CALL_MEDIA_REMOTE_HOLD) {
    if (ci.conf_slot != PJSUA_INVALID_ID) {
      pjsua_conf_connect(ci.conf_slot, 0);
      pjsua_conf_connect(0, ci.conf_slot);
    }
  }
  auto* ev = new Event("mediaState");
  ev->num("callId", call_id).str("status", media_status_name(ci.media_status));
  emit(ev);
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

}  // namespace

void install_callbacks(pjsua_callback* cb) {
  cb->on_reg_state2 = &on_reg_state2;
  cb->on_incoming_call = &on_incoming_call;
  cb->on_call_state = &on_call_state;
  cb->on_call_tsx_state = &on_call_tsx_state;
  cb->on_call_media_state = &on_call_media_state;
  cb->on_dtmf_digit2 = &on_dtmf_digit2;
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
