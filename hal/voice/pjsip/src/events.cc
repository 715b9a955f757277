// Event values and their names.
#include <uv.h>

#include "voice.h"

namespace e911voice {

// Every event carries `at`: milliseconds on the same monotonic clock as
// process.hrtime(), taken on the thread where pjsua reported it, so JS can
// measure latency without counting the hop to the JS thread.
Event::Event(const char* type) {
  fields.emplace_back("type", std::string(type));
  fields.emplace_back("at", static_cast<double>(uv_hrtime()) / 1e6);
}

Event& Event::num(const char* key, double v) {
  fields.emplace_back(key, v);
  return *this;
}

Event& Event::flag(const char* key, bool v) {
  fields.emplace_back(key, v);
  return *this;
}

Event& Event::str(const char* key, std::string v) {
  fields.emplace_back(key, std::move(v));
  return *this;
}

Event& Event::str(const char* key, const pj_str_t& v) {
  return str(key, to_string(v));
}

Event& Event::headers(const char* key, HeaderList v) {
  fields.emplace_back(key, std::move(v));
  return *this;
}

std::string to_string(const pj_str_t& s) {
  if (s.ptr == nullptr || s.slen <= 0) return std::string();
  return std::string(s.ptr, static_cast<size_t>(s.slen));
}

// pjsua's own state_text abbreviates ("DISCONNCTD"); use full names.
const char* call_state_name(pjsip_inv_state s) {
  switch (s) {
    case PJSIP_INV_STATE_NULL: return "NULL";
    case PJSIP_INV_STATE_CALLING: return "CALLING";
    case PJSIP_INV_STATE_INCOMING: return "INCOMING";
    case PJSIP_INV_STATE_EARLY: return "EARLY";
    case PJSIP_INV_STATE_CONNECTING: return "CONNECTING";
    case PJSIP_INV_STATE_CONFIRMED: return "CONFIRMED";
    case PJSIP_INV_STATE_DISCONNECTED: return "DISCONNECTED";
  }
  return "NULL";
}

const char* media_status_name(pjsua_call_media_status s) {
  switch (s) {
    case PJSUA_CALL_MEDIA_NONE: return "none";
    case PJSUA_CALL_MEDIA_ACTIVE: return "active";
    case PJSUA_CALL_MEDIA_LOCAL_HOLD: return "localHold";
    case PJSUA_CALL_MEDIA_REMOTE_HOLD: return "remoteHold";
    case PJSUA_CALL_MEDIA_ERROR: return "error";
  }
  return "none";
}

void call_setting(pjsua_call_setting* opt) {
  pjsua_call_setting_default(opt);
  opt->aud_cnt = 1;
  opt->vid_cnt = 0;
  opt->txt_cnt = 0;
}

}  // namespace e911voice
