// libFuzzer target for request framing and answering (Conn::process_input).
// Input: 4 bytes that seed how the rest is split into reads, then the bytes a
// client sends. Checks, besides what ASan/UBSan catch:
//  - buffers stay within their bounds;
//  - the output is a sequence of whole prebuilt answers;
//  - the answers are the same however the input is split into reads
//    (differential: maximal reads vs. the seeded random split).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "connection.h"
#include "http.h"

using namespace tcplab;

namespace {

struct Split {
  uint32_t state;
  bool maximal;
  size_t next(size_t space) {
    if (maximal) return space;
    state = state * 1103515245u + 12345u;
    uint32_t r = state >> 16;
    size_t n = (r & 7) == 0 ? 1 + (r % 4096) : 1 + (r % 24);
    return n < space ? n : space;
  }
};

// Every answer's Date line carries the second it was made in: masked, so answers made in
// different seconds (the two runs below, or a run across a second's turn) compare equal.
std::string masked(std::string_view text) {
  std::string s(text);
  static constexpr std::string_view kDate = "\r\nDate: ";
  for (size_t at = s.find(kDate); at != std::string::npos; at = s.find(kDate, at + 1)) {
    const size_t from = at + kDate.size();
    for (size_t i = from; i < from + 29 && i < s.size(); i++) s[i] = '#';
  }
  return s;
}

void check_answers(const std::string& out) {
  static const std::string kAll[] = {
      masked(Responses::ok(true, false)), masked(Responses::ok(false, false)),   masked(Responses::ok(true, true)),
      masked(Responses::ok(false, true)), masked(Responses::error(400)),         masked(Responses::error(408)),
      masked(Responses::error(413)),      masked(Responses::error(431)),         masked(Responses::error(501)),
      masked(Responses::error(505)),      std::string(Responses::continue_100())};
  size_t off = 0;
  while (off < out.size()) {
    bool matched = false;
    for (const std::string& r : kAll) {
      if (out.compare(off, r.size(), r) == 0) {
        off += r.size();
        matched = true;
        break;
      }
    }
    if (!matched) abort();
  }
}

std::string run(const uint8_t* data, size_t size, Split split) {
  static ConnLimits limits = [] {
    ConnLimits l;
    l.max_header_bytes = 1024;  // small, so the fuzzer reaches the limits
    l.in_cap = 2048;
    l.out_cap = 512;
    return l;
  }();
  static ThreadStats st;
  Conn c(-1, limits);
  std::string out;
  size_t off = 0;
  while (off < size && !c.close_after_flush) {
    size_t space = limits.in_cap - c.in_len;
    if (space == 0) abort();  // a partial head must always leave room
    size_t n = split.next(space);
    if (n > size - off) n = size - off;
    std::memcpy(c.in.get() + c.in_len, data + off, n);
    c.in_len += n;
    off += n;
    for (;;) {
      bool stalled = c.process_input(st);
      if (c.in_len > limits.in_cap || c.out_len > limits.out_cap) abort();
      out.append(c.out.get(), c.out_len);  // "flush"
      c.out_len = 0;
      if (!stalled) break;
    }
  }
  out = masked(out);
  check_answers(out);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  uint32_t seed;
  std::memcpy(&seed, data, 4);
  const std::string a = run(data + 4, size - 4, Split{seed, true});
  const std::string b = run(data + 4, size - 4, Split{seed, false});
  if (a != b) abort();
  return 0;
}
