// UTF-8 validation, lossy decoding (Rust semantics, which HF follows) and the GPT-2 byte alphabet.
#include <utf8proc.h>

#include "lib/tokenizer/internal.h"

namespace llmopt::tok::detail {

static bool cont(unsigned char c) { return (c & 0xC0) == 0x80; }

// Number of leading bytes at s[i] that are a valid (prefix of a) UTF-8 sequence, and its full width.
static int valid_prefix(std::string_view s, size_t i, int& width) {
  auto at = [&](size_t k) -> int { return i + k < s.size() ? (unsigned char)s[i + k] : -1; };
  int c = at(0);
  if (c < 0x80) { width = 1; return 1; }
  int lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) width = 2;
  else if (c >= 0xE0 && c <= 0xEF) { width = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
  else if (c >= 0xF0 && c <= 0xF4) { width = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
  else { width = 0; return 0; }
  int c1 = at(1);
  if (c1 < lo || c1 > hi) return 1;
  for (int k = 2; k < width; k++)
    if (at(k) < 0 || !cont((unsigned char)at(k))) return k;
  return width;
}

int utf8_valid_len(std::string_view s, size_t i) {
  int width;
  int n = valid_prefix(s, i, width);
  return n == width ? n : 0;
}

int utf8_char_len(unsigned char c) {
  if (c < 0xC0) return 1;
  if (c < 0xE0) return 2;
  if (c < 0xF0) return 3;
  return c < 0xF8 ? 4 : 1;
}

bool utf8_valid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if ((unsigned char)s[i] < 0x80) { i++; continue; }
    int n = utf8_valid_len(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    int width;
    int n = valid_prefix(s, i, width);
    if (n == width && n > 0) { out.append(s.substr(i, n)); i += n; continue; }
    out += "\xEF\xBF\xBD";  // one U+FFFD per maximal invalid prefix
    i += n > 0 ? n : 1;
  }
  return out;
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) out += char(cp);
  else if (cp < 0x800) { out += char(0xC0 | cp >> 6); out += char(0x80 | (cp & 0x3F)); }
  else if (cp < 0x10000) {
    out += char(0xE0 | cp >> 12); out += char(0x80 | ((cp >> 6) & 0x3F)); out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | cp >> 18); out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F)); out += char(0x80 | (cp & 0x3F));
  }
}

uint32_t utf8_decode(std::string_view s, size_t& i) {
  unsigned char c = s[i];
  int n = utf8_char_len(c);
  uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
  for (int k = 1; k < n && i + k < s.size(); k++) cp = cp << 6 | (s[i + k] & 0x3F);
  i += n;
  return cp;
}

bool is_white_space(uint32_t cp) {
  if (cp == ' ' || (cp >= 9 && cp <= 13) || cp == 0x85) return true;
  auto cat = utf8proc_category(utf8proc_int32_t(cp));
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

// GPT-2: printable Latin-1 bytes stand for themselves, the other 68 bytes for U+0100.. in byte order.
static std::array<int, 256> byte_codepoints() {
  std::array<int, 256> cp{};
  int next = 256;
  for (int b = 0; b < 256; b++) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    cp[b] = printable ? b : next++;
  }
  return cp;
}

const std::array<std::string, 256>& byte_to_char() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    auto cp = byte_codepoints();
    for (int b = 0; b < 256; b++) utf8_append(t[b], cp[b]);
    return t;
  }();
  return table;
}

bool chars_to_bytes(std::string_view piece, std::string& out) {
  static const std::array<int16_t, 324> inverse = [] {
    std::array<int16_t, 324> inv;
    inv.fill(-1);
    auto cp = byte_codepoints();
    for (int b = 0; b < 256; b++) inv[cp[b]] = int16_t(b);
    return inv;
  }();
  size_t mark = out.size();
  for (size_t i = 0; i < piece.size();) {
    uint32_t cp = utf8_decode(piece, i);
    if (cp >= inverse.size() || inverse[cp] < 0) { out.resize(mark); return false; }
    out += char(inverse[cp]);
  }
  return true;
}

}  // namespace llmopt::tok::detail
