# node-gyp build of the pjsua-lib binding. pjproject is a system prerequisite
# found through pkg-config (honours PKG_CONFIG_PATH / PKG_CONFIG_SYSROOT_DIR);
# the project never vendors or builds it.
{
  "targets": [
    {
      "target_name": "e911_voice",
      "sources": ["src/addon.cc", "src/callbacks.cc", "src/events.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["<!@(pkg-config --cflags libpjproject)", "-Wall", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "libraries": [
        "<!@(pkg-config --libs libpjproject)",
        # libpjproject.pc carries no rpath: without this the loader misses
        # libpj*.so and the codec libraries they pull in. Old-style DT_RPATH
        # (not RUNPATH) because it also applies to the libraries' own
        # dependencies (libpjsua.so -> libpjsip-ua.so -> ...).
        "-Wl,--disable-new-dtags",
        "-Wl,-rpath,<!(pkg-config --variable=libdir libpjproject)"
      ]
    }
  ]
}
