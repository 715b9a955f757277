// Shared declarations of the pjsua-lib binding.
//
// Threading model (see docs/voice.md): pjsua-lib runs its own worker threads
// and calls our callbacks on them (or on the JS thread, inside a pjsua call).
// A callback never touches JS: it copies what it needs out of pjsua memory
// into an Event and queues it on the one ThreadSafeFunction, which delivers
// events to JS in order on the JS thread.
#pragma once

#include <pjsua-lib/pjsua.h>

#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace e911voice {

using HeaderList = std::vector<std::pair<std::string, std::string>>;
using Value = std::variant<double, bool, std::string, HeaderList>;

// One event, as plain owned data: safe to move across threads.
struct Event {
  std::vector<std::pair<std::string, Value>> fields;

  explicit Event(const char* type);
  Event& num(const char* key, double v);
  Event& flag(const char* key, bool v);
  Event& str(const char* key, std::string v);
  Event& str(const char* key, const pj_str_t& v);
  Event& headers(const char* key, HeaderList v);
};

// Queue an event for JS. Safe from any thread; drops it when no stack runs.
void emit(Event* ev);

// Options the callbacks read; written only while no pjsua thread runs.
struct CallbackOptions {
  bool autoAnswer = false;
  std::vector<std::string> incomingHeaders;  // lower-case names
  bool tlsVerifyServer = true;               // TLS transports check the server certificate
};
extern CallbackOptions g_cbopts;

// Media settings: the sound device and the audio test mode. Written only
// while no pjsua thread runs; g_sound_fallback also by the media callbacks.
struct MediaOptions {
  bool nullSound = true;
  std::string capture = "default", playback = "default";  // ALSA device names
  // Test mode: a tone (on/off, looping) into every call, and what each call
  // receives recorded to <recordDir>/<Call-ID>.wav.
  unsigned toneHz = 0, toneOnMs = 0, toneOffMs = 0;
  std::string recordDir;
  unsigned clockRate = 16000, ptimeMs = 20;
};
extern MediaOptions g_media;

// Opens the configured sound device, or the null one. Returns why the
// configured device could not be used ("" when it could, or when null was
// asked for); on failure the null device is in place, so calls still carry
// RTP. Call with no pjsua lock held.
std::string select_sound_device();
// G.711 (PCMU, then PCMA) ahead of every other codec.
void prefer_g711();
// Test mode: the tone generator's conference slot (or PJSUA_INVALID_ID).
pj_status_t start_test_tone();
void stop_test_tone();
// WAV playback into a call (16-bit PCM mono, any rate): the player is
// connected to the call's conference slot, counts each time the file plays
// through ("playback" events), and is destroyed with the call.
pj_status_t start_playback(pjsua_call_id call_id, const std::string& file, bool loop, pjsua_player_id* out);
pj_status_t stop_playback(pjsua_player_id id);
void stop_call_playbacks(pjsua_call_id call_id);
// Forget every playback (the stack stopped: pjsua_destroy freed the players).
void reset_playbacks();
// Per-call media state kept between callbacks (recorder, RTP totals).
void reset_call_media(pjsua_call_id call_id);

// SDP attributes one call adds to the audio m-line of each offer it makes (RFC 8373
// hlang-send/hlang-recv). Handed to pjsua as the call's user data before the INVITE's SDP
// is made; owned by a registry, freed at the call's DISCONNECTED (or when make_call fails),
// so a stale pointer is never read.
struct CallSdp {
  std::vector<std::pair<std::string, std::string>> audioAttributes;
};
// Takes ownership; returns the pointer to pass as pjsua user data.
void* register_call_sdp(CallSdp* sdp);
// Frees it if still registered (safe to call twice).
void release_call_sdp(void* user_data);

// Fill the pjsua callback table.
void install_callbacks(pjsua_callback* cb);
// pjsua log writer (routes pjsip logs to JS as "log" events).
void log_writer(int level, const char* data, int len);

// Per-call settings we always use: one audio stream, no video, and no
// real-time-text m-line (recent pjproject offers one by default).
void call_setting(pjsua_call_setting* opt);

std::string to_string(const pj_str_t& s);
const char* call_state_name(pjsip_inv_state s);
const char* media_status_name(pjsua_call_media_status s);

}  // namespace e911voice
