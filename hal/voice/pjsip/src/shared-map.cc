// mapShared(fd, size) -> ArrayBuffer over a MAP_SHARED mapping of the file's
// first `size` bytes. A store into it is a store into the file's page cache:
// it survives the process's death (SIGKILL) as a write(2) does, without a
// syscall on the caller's path. The agent's emergency begin file is written so.
// Pages are touched for writing here, so the first store finds them mapped.
// The mapping is removed when the ArrayBuffer is collected, or by unmapShared().
#include <napi.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "voice.h"

namespace e911voice {

namespace {

struct Mapping {
  void* addr;
  size_t size;
};

void unmap(Napi::Env, void* data, Mapping* m) {
  if (m->addr != nullptr) munmap(m->addr, m->size);
  delete m;
}

}  // namespace

Napi::Value MapShared(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber())
    throw Napi::TypeError::New(env, "mapShared(fd, size): fd and size are numbers");
  int fd = info[0].As<Napi::Number>().Int32Value();
  double want = info[1].As<Napi::Number>().DoubleValue();
  if (!(want > 0) || want > 64.0 * 1024 * 1024) throw Napi::RangeError::New(env, "mapShared: size out of range");
  size_t size = static_cast<size_t>(want);
  struct stat st;
  if (fstat(fd, &st) != 0) throw Napi::Error::New(env, std::string("mapShared: fstat: ") + strerror(errno));
  // A store past the file's end would be SIGBUS, not an error: the file must be as long as the map.
  if (!S_ISREG(st.st_mode) || static_cast<size_t>(st.st_size) < size)
    throw Napi::Error::New(env, "mapShared: not a regular file of at least the mapped size");
  void* addr = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (addr == MAP_FAILED) throw Napi::Error::New(env, std::string("mapShared: mmap: ") + strerror(errno));
  auto* m = new Mapping{addr, size};
  // The mapping lives as long as the ArrayBuffer (or until unmapShared). A detached buffer has length 0.
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, addr, size, unmap, m);
  return ab;
}

Napi::Value UnmapShared(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "unmapShared(buffer)");
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  // Detaching runs the finalizer (munmap) now: no view of the buffer can store into it after.
  if (!ab.IsDetached()) ab.Detach();
  return env.Undefined();
}

}  // namespace e911voice
