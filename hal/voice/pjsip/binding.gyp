# node-gyp build of the pjsua-lib binding. pjproject comes through pkg-config:
# normally the static build scripts/build-pjproject.mjs makes (scripts/build-voice.mjs
# points PKG_CONFIG_PATH at it), or a phone maker's own (docs/voice.md).
# --static: pjproject's static libraries and what they need (OpenSSL, ALSA) go into
# e911_voice.node itself, so one file carries the SIP stack and no rpath is needed.
{
  "targets": [
    {
      "target_name": "e911_voice",
      "sources": ["src/addon.cc", "src/callbacks.cc", "src/events.cc", "src/shared-map.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["<!@(pkg-config --cflags libpjproject)", "-Wall", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "libraries": [
        "<!@(pkg-config --static --libs libpjproject)",
        # pjproject's symbols stay inside the addon: nothing else in the process
        # (node, other addons) can bind to them or override them.
        "-Wl,--exclude-libs,ALL"
      ]
    }
  ]
}
