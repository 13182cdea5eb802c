// Request framing: see http.h. The grammar is RFC 9112's, strictly: CRLF line
// ends only (a bare LF is an error), no obs-fold, tokens for method and field
// names; HTTP/1.0, and HTTP/1.1 for every 1.x above 0 (RFC 9110 §6.2: a higher minor
// version is answered as the highest the server implements); 2.x and up get 505.
// Chunked bodies are not implemented (501): the lab's load generators never send them.
// A Content-Length above the body limit gets 413. A missing Host header is accepted
// (RFC 9112 says 400) because some load generators omit it; two Host headers get 400.
#include "http.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <string>

namespace tcplab {

namespace {

constexpr bool is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

struct CharTable {
  bool tchar[256];
  bool field_value[256];  // VCHAR, obs-text, SP, HTAB
  bool target[256];       // anything visible
  constexpr CharTable() : tchar(), field_value(), target() {
    for (int c = 0; c < 256; c++) {
      tchar[c] = is_tchar(static_cast<unsigned char>(c));
      field_value[c] = (c >= 0x21 && c != 0x7f) || c == ' ' || c == '\t';
      target[c] = c >= 0x21 && c != 0x7f;
    }
  }
};
constexpr CharTable kChars;

inline unsigned char u(char c) { return static_cast<unsigned char>(c); }

// Byte-parallel tests on a 64-bit word (the bit-twiddling classics): nonzero when some byte is
// zero, or is below n (n ≤ 128). Exact: no byte is reported that is not so.
constexpr uint64_t kEach = 0x0101010101010101ull;
constexpr uint64_t has_zero(uint64_t x) { return (x - kEach) & ~x & kEach * 0x80; }
constexpr uint64_t has_less(uint64_t x, uint64_t n) { return (x - kEach * n) & ~x & kEach * 0x80; }
static_assert(has_zero(0x4142434445464700ull) != 0 && has_zero(0x4142434445464748ull) == 0);
static_assert(has_less(0x41424344454647'09ull, 0x20) != 0 && has_less(0x2020202020202020ull, 0x20) == 0);
static_assert(has_less(0x7f80ff2021222324ull, 0x20) == 0);

// a[0..n) equals lit ignoring ASCII case; lit is lower case.
bool ieq(const char* a, size_t n, std::string_view lit) {
  if (lit.size() != n) return false;
  for (size_t i = 0; i < n; i++) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c | 0x20);
    if (c != lit[i]) return false;
  }
  return true;
}

Frame error(uint16_t status) {
  Frame f;
  f.kind = Frame::kError;
  f.status = status;
  return f;
}

enum class Method { kKnown, kHead, kUnknown };

Method classify_method(std::string_view m) {
  static constexpr std::string_view kKnown[] = {"GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT"};
  if (m == "HEAD") return Method::kHead;
  for (std::string_view k : kKnown) {
    if (m == k) return Method::kKnown;
  }
  return Method::kUnknown;
}

// Looks for the close / keep-alive options in a Connection field value.
void scan_connection(const char* v, size_t n, bool* close, bool* keep_alive) {
  size_t i = 0;
  while (i < n) {
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
    size_t start = i;
    while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t') i++;
    if (ieq(v + start, i - start, "close")) *close = true;
    if (ieq(v + start, i - start, "keep-alive")) *keep_alive = true;
  }
}

// The fields the framer reads, told apart by length first, then by the name folded to lower
// case eight bytes at a time. Folding is OR 0x20: exact for a token (validated before), whose
// only bytes that OR into a lower-case letter are letters, and '-' stays '-'.
enum class Field { kOther, kContentLength, kExpect, kHost, kTransferEncoding, kConnection };

inline uint64_t load8(const char* s) {
  uint64_t w;
  std::memcpy(&w, s, 8);
  return w;
}

// name[0..n) folded equals lit (lower case, n long), n ≥ 4: whole words, then the last 8 (or 4)
// bytes, overlapping.
inline bool folded_eq(const char* name, const char* lit, size_t n) {
  if (n < 8) {
    uint32_t a, b, c, d;
    std::memcpy(&a, name, 4);
    std::memcpy(&b, lit, 4);
    std::memcpy(&c, name + n - 4, 4);
    std::memcpy(&d, lit + n - 4, 4);
    return ((a | 0x20202020u) == b) & ((c | 0x20202020u) == d);
  }
  for (size_t i = 0; i + 8 <= n; i += 8)
    if ((load8(name + i) | kEach * 0x20) != load8(lit + i)) return false;
  return (load8(name + n - 8) | kEach * 0x20) == load8(lit + n - 8);
}

Field field_of(const char* name, size_t n) {
  switch (n) {
    case 4:
      return folded_eq(name, "host", 4) ? Field::kHost : Field::kOther;
    case 6:
      return folded_eq(name, "expect", 6) ? Field::kExpect : Field::kOther;
    case 10:
      return folded_eq(name, "connection", 10) ? Field::kConnection : Field::kOther;
    case 14:
      return folded_eq(name, "content-length", 14) ? Field::kContentLength : Field::kOther;
    case 17:
      return folded_eq(name, "transfer-encoding", 17) ? Field::kTransferEncoding : Field::kOther;
    default:
      return Field::kOther;
  }
}

constexpr uint64_t kMaxContentLength = 1ull << 40;

}  // namespace

Frame RequestFramer::next(const char* data, size_t len) {
  if (body_left_ != 0) {  // discarding a Content-Length body
    Frame f;
    uint64_t take = std::min<uint64_t>(body_left_, len);
    body_left_ -= take;
    f.consumed = static_cast<size_t>(take);
    if (body_left_ == 0) {
      f.kind = Frame::kRequest;
      f.keep_alive = body_keep_alive_;
      f.head = body_head_;
    }
    return f;
  }

  // Empty lines before a request line are ignored (RFC 9112 section 2.2).
  if (scanned_ == 0 && len >= 2 && data[0] == '\r' && data[1] == '\n') {
    Frame f;
    f.consumed = 2;
    return f;
  }

  // Find the end of the header block. scanned_ always sits at a line start, and
  // every line before it ended in CRLF, so each byte is looked at once.
  size_t pos = scanned_;
  while (pos < len) {
    const void* nl = std::memchr(data + pos, '\n', len - pos);
    if (nl == nullptr) break;
    const size_t i = static_cast<size_t>(static_cast<const char*>(nl) - data);
    // The size limit is checked first so the answer does not depend on how the
    // bytes were split into reads (the fuzz target checks exactly that).
    if (i + 1 > max_header_bytes_) return error(431);
    if (i == pos || data[i - 1] != '\r') return error(400);  // bare LF
    if (lines_ < kLineSlots) line_end_[lines_++] = static_cast<uint32_t>(i);
    if (i - 1 == pos) {  // an empty line: the header block ends here
      const size_t head_len = i + 1;
      scanned_ = 0;
      uint64_t content_length = 0;
      Frame f = parse_head(data, head_len, &content_length);
      lines_ = 0;
      if (f.kind == Frame::kError) return f;
      const size_t available = len - head_len;
      if (content_length <= available) {
        f.consumed = head_len + static_cast<size_t>(content_length);
        return f;
      }
      body_left_ = content_length - available;
      body_keep_alive_ = f.keep_alive;
      body_head_ = f.head;
      Frame more;
      more.consumed = len;
      more.continue_100 = f.continue_100;
      return more;
    }
    pos = i + 1;
  }
  scanned_ = pos;
  // The block is not complete and already has len bytes: it would exceed the limit.
  if (len >= max_header_bytes_) return error(431);
  return Frame{};
}

const char* RequestFramer::line_end(const char* data, size_t k, const char* from, const char* limit) const {
  if (k < lines_) return data + line_end_[k] - 1;
  return static_cast<const char*>(std::memchr(from, '\n', limit - from)) - 1;
}

Frame RequestFramer::parse_head(const char* data, size_t head_len, uint64_t* content_length) const {
  const char* p = data;
  const char* const end = data + head_len - 2;  // the final empty line's CRLF
  // Every line ends in CRLF (next() checked), and CR is in none of the character classes: the
  // scans below stop at it without a bounds test on each byte.

  // Request line: method SP request-target SP HTTP-version CRLF.
  const char* eol = line_end(data, 0, p, end);  // at '\r'
  const char* q = p;
  while (kChars.tchar[u(*q)]) q++;
  if (q == p || q == eol || *q != ' ') return error(400);
  std::string_view method(p, q - p);
  const char* t = ++q;
  while (kChars.target[u(*q)]) q++;
  if (q == t || q == eol || *q != ' ') return error(400);
  q++;
  if (eol - q != 8 || std::memcmp(q, "HTTP/", 5) != 0 || q[6] != '.' || q[5] < '0' || q[5] > '9' || q[7] < '0' ||
      q[7] > '9') {
    return error(400);
  }
  if (q[5] != '1') return error(505);
  const bool http11 = q[7] != '0';
  const Method kind = classify_method(method);

  // Header fields: name ":" OWS value OWS CRLF.
  bool has_cl = false, has_te = false, has_host = false, conn_close = false, conn_keep_alive = false,
       expect_100 = false;
  uint64_t cl = 0;
  size_t count = 0;
  p = eol + 2;
  while (p < end) {
    if (++count > kMaxHeaders) return error(431);
    eol = line_end(data, count, p, end + 2);
    q = p;
    while (kChars.tchar[u(*q)]) q++;  // obs-fold (leading SP/HTAB) fails here too
    if (q == p || q == eol || *q != ':') return error(400);
    const char* name = p;
    const size_t name_len = q - p;
    q++;
    while (*q == ' ' || *q == '\t') q++;
    const char* v = q;
    // Eight bytes at a time while none is a control byte or DEL (a field value is mostly
    // visible ASCII); then byte by byte (HTAB is allowed), up to the CR.
    for (; eol - q >= 8; q += 8) {
      uint64_t w;
      std::memcpy(&w, q, 8);
      if (has_less(w, 0x20) | has_zero(w ^ kEach * 0x7f)) break;
    }
    while (kChars.field_value[u(*q)]) q++;
    if (q != eol) return error(400);
    const char* vend = eol;
    while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t')) vend--;
    const size_t vlen = vend - v;

    switch (field_of(name, name_len)) {
      case Field::kContentLength: {
        if (vlen == 0) return error(400);
        uint64_t n = 0;
        for (size_t k = 0; k < vlen; k++) {
          if (v[k] < '0' || v[k] > '9') return error(400);
          n = n * 10 + static_cast<uint64_t>(v[k] - '0');
          if (n > kMaxContentLength) return error(400);
        }
        if (has_cl && n != cl) return error(400);
        has_cl = true;
        cl = n;
        break;
      }
      case Field::kExpect:
        expect_100 = ieq(v, vlen, "100-continue");
        break;
      case Field::kHost:
        if (has_host) return error(400);
        has_host = true;
        break;
      case Field::kTransferEncoding:
        has_te = true;
        break;
      case Field::kConnection:
        scan_connection(v, vlen, &conn_close, &conn_keep_alive);
        break;
      case Field::kOther:
        break;
    }
    p = eol + 2;
  }

  if (has_te) return error(has_cl || !http11 ? 400 : 501);
  if (kind == Method::kUnknown) return error(501);
  if (cl > max_body_bytes_) return error(413);

  Frame f;
  f.kind = Frame::kRequest;
  f.head = kind == Method::kHead;
  f.keep_alive = http11 ? !conn_close : (conn_keep_alive && !conn_close);
  f.continue_100 = expect_100 && http11 && cl > 0;
  *content_length = cl;
  return f;
}

namespace {

// Every answer carries a Date (RFC 9110 §6.6.1: a server with a clock sends one), in the
// IMF-fixdate form, always 29 characters: "Sun, 06 Nov 1994 08:49:37 GMT".
constexpr size_t kDateLen = 29;
constexpr std::string_view kDatePrefix = "Date: ";

// An answer: its status line, its Date line (rewritten when the second changes), the rest.
struct Answer {
  std::string text;
  size_t date_at = 0;
  Answer(std::string_view status, std::string_view rest) {
    text.reserve(status.size() + kDatePrefix.size() + kDateLen + 2 + rest.size());
    text.append(status).append(kDatePrefix);
    date_at = text.size();
    text.append(kDateLen, ' ').append("\r\n").append(rest);
  }
};

#define TCPLAB_HEADERS(conn, len) "Content-Type: text/plain\r\nContent-Length: " len "\r\nConnection: " conn "\r\n\r\n"

// The answers of one thread: each loop thread (and each forked process) keeps its own, so a
// date is rewritten only where it is read. The clock is the coarse wall clock (vDSO, no
// syscall), read by refresh(): once a batch of input, not once an answer; the text is
// rewritten once a second.
struct Table {
  time_t second = -1;
  Answer ok_keep_alive{"HTTP/1.1 200 OK\r\n", TCPLAB_HEADERS("keep-alive", "6") "hello\n"};
  Answer ok_close{"HTTP/1.1 200 OK\r\n", TCPLAB_HEADERS("close", "6") "hello\n"};
  Answer head_keep_alive{"HTTP/1.1 200 OK\r\n", TCPLAB_HEADERS("keep-alive", "6")};
  Answer head_close{"HTTP/1.1 200 OK\r\n", TCPLAB_HEADERS("close", "6")};
  Answer e400{"HTTP/1.1 400 Bad Request\r\n", TCPLAB_HEADERS("close", "12") "bad request\n"};
  Answer e408{"HTTP/1.1 408 Request Timeout\r\n", TCPLAB_HEADERS("close", "16") "request timeout\n"};
  Answer e413{"HTTP/1.1 413 Content Too Large\r\n", TCPLAB_HEADERS("close", "18") "content too large\n"};
  Answer e431{"HTTP/1.1 431 Request Header Fields Too Large\r\n",
              TCPLAB_HEADERS("close", "24") "header fields too large\n"};
  Answer e501{"HTTP/1.1 501 Not Implemented\r\n", TCPLAB_HEADERS("close", "16") "not implemented\n"};
  Answer e505{"HTTP/1.1 505 HTTP Version Not Supported\r\n",
              TCPLAB_HEADERS("close", "27") "http version not supported\n"};

  void date(time_t now) {
    struct tm g;
    gmtime_r(&now, &g);
    char d[kDateLen + 1];
    std::strftime(d, sizeof d, "%a, %d %b %Y %H:%M:%S GMT", &g);  // the C locale's names, as RFC 9110 wants
    for (Answer* a :
         {&ok_keep_alive, &ok_close, &head_keep_alive, &head_close, &e400, &e408, &e413, &e431, &e501, &e505})
      a->text.replace(a->date_at, kDateLen, d, kDateLen);
    second = now;
  }
};

#undef TCPLAB_HEADERS

// Each thread's table, owned by a thread_local (built on first use, freed at thread exit). The
// answer path reaches it through a plain pointer in the initial-exec TLS model: one load off
// the thread register. The owner itself, a thread_local with a constructor in a shared object,
// costs a call to __tls_get_addr and a guard on every access (callgrind: 136 instructions a
// request, of 2,368).
thread_local Table* tls_table __attribute__((tls_model("initial-exec"))) = nullptr;

void set_date(Table& t) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  if (ts.tv_sec != t.second) t.date(ts.tv_sec);
}

__attribute__((noinline)) Table& first_table() {
  thread_local Table owner;
  tls_table = &owner;
  set_date(owner);  // a thread's first answer: never an empty Date
  return owner;
}

inline Table& table() {
  Table* t = tls_table;
  return t != nullptr ? *t : first_table();
}

}  // namespace

void Responses::refresh() { set_date(table()); }

std::string_view Responses::continue_100() { return "HTTP/1.1 100 Continue\r\n\r\n"; }

std::string_view Responses::ok(bool keep_alive, bool head) {
  Table& t = table();
  if (head) return keep_alive ? t.head_keep_alive.text : t.head_close.text;
  return keep_alive ? t.ok_keep_alive.text : t.ok_close.text;
}

std::string_view Responses::error(uint16_t status) {
  Table& t = table();
  switch (status) {
    case 408:
      return t.e408.text;
    case 413:
      return t.e413.text;
    case 431:
      return t.e431.text;
    case 501:
      return t.e501.text;
    case 505:
      return t.e505.text;
    default:
      return t.e400.text;
  }
}

size_t Responses::max_size() {
  const Table& t = table();
  size_t n = 0;
  for (const Answer* a : {&t.ok_keep_alive, &t.ok_close, &t.e400, &t.e408, &t.e413, &t.e431, &t.e501, &t.e505})
    n = std::max(n, a->text.size());
  return n;
}

}  // namespace tcplab
