// Incremental HTTP/1.1 request framing and the server's prebuilt responses.
//
// The framer finds where each request ends; it never copies or allocates. It is
// fed the unconsumed input of one connection (starting at the current request)
// and says how many bytes it consumed and whether a whole request has arrived.
// Bytes may arrive one at a time or many requests per read; a header block is
// scanned once in total (the scan resumes where the last call stopped).
//
// Thread safety: a framer belongs to one connection; no shared state.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tcplab {

struct Frame {
  enum Kind : uint8_t { kNeedMore, kRequest, kError };
  Kind kind = kNeedMore;
  bool keep_alive = false;  // kRequest: the connection stays open after the answer
  bool head = false;        // kRequest: HEAD, answer without a body
  uint16_t status = 0;      // kError: 400, 413, 431, 501 or 505; the connection closes
  size_t consumed = 0;      // bytes of the input the caller may drop now
  // The head just parsed said `Expect: 100-continue` (HTTP/1.1, a body to come): answer
  // "100 Continue" first. Sent whether or not the body is here already, so the output does
  // not depend on how the input was split into reads.
  bool continue_100 = false;
};

class RequestFramer {
 public:
  static constexpr size_t kDefaultMaxHeaderBytes = 8192;
  static constexpr uint64_t kDefaultMaxBodyBytes = 1 << 20;
  static constexpr size_t kMaxHeaders = 100;

  explicit RequestFramer(size_t max_header_bytes = kDefaultMaxHeaderBytes,
                         uint64_t max_body_bytes = kDefaultMaxBodyBytes)
      : max_header_bytes_(max_header_bytes), max_body_bytes_(max_body_bytes) {}

  // data/len: the connection's unconsumed input. The caller drops `consumed`
  // bytes and calls again while the result is not kNeedMore with consumed == 0.
  Frame next(const char* data, size_t len);

  // True while a Content-Length body is being discarded.
  bool in_body() const { return body_left_ != 0; }

 private:
  // Parses a complete header block; on success sets *content_length. Its lines end where
  // next() found them (line_end_), so the block is scanned once.
  Frame parse_head(const char* data, size_t head_len, uint64_t* content_length) const;
  // Where the line ending at or after `from` ends ('\r'): the k-th line's recorded end, or found.
  const char* line_end(const char* data, size_t k, const char* from, const char* limit) const;

  // The '\n' of each line of the current block so far, as next() found them (the first
  // kLineSlots; a longer block's later lines are found again).
  static constexpr size_t kLineSlots = kMaxHeaders + 2;
  uint32_t line_end_[kLineSlots];
  size_t lines_ = 0;

  size_t max_header_bytes_;
  uint64_t max_body_bytes_;  // a Content-Length above it gets 413
  size_t scanned_ = 0;       // bytes of the current header block known to be well-formed lines
  uint64_t body_left_ = 0;   // body bytes still to discard
  bool body_keep_alive_ = false;
  bool body_head_ = false;
};

// The fixed answers, each thread its own copy, with a Date line rewritten once a second
// (refresh()). The views stay valid on the thread that got them until its next refresh() (they
// are copied at once).
struct Responses {
  static std::string_view ok(bool keep_alive, bool head);
  static std::string_view error(uint16_t status);  // always "Connection: close"
  static std::string_view continue_100();          // "HTTP/1.1 100 Continue", no body
  static size_t max_size();                        // the longest of them
  // Reads the wall clock and rewrites this thread's Date lines when its second changed: once a
  // batch, before its answers (each design's loop after its wait, a worker before its job, the
  // 408 path).
  static void refresh();
};

}  // namespace tcplab
