/*
** head.c -- corio._http: the strict scanner for an HTTP/1.x head block
** (request or status line plus header fields, up to and including the
** blank line).  It never calls into Lua while scanning and is one pure
** pass over the bytes: every rule below names the attack it stops.  The
** semantic checks (Content-Length vs Transfer-Encoding, Host) are in
** scripts/_http_msg.lua, on the fields this returns.
**
**   parse_head(block, kind, max_headers)
**     kind "request"  -> method, target, minor, fields
**     kind "response" -> status, reason, minor, fields
**   fields is a flat list {name_lowercase, value, name, value, ...};
**   on a malformed head: nil, status (400/431/505), detail.
*/
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include "http.h"

int luaopen_corio__http(lua_State *L);

/* RFC 9110 tchar: the only bytes a method or a field name may hold. */
static int is_tchar(unsigned char c) {
  if (c >= 'a' && c <= 'z') return 1;
  if (c >= 'A' && c <= 'Z') return 1;
  if (c >= '0' && c <= '9') return 1;
  return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

typedef struct { const char *p, *end; } cursor;

static int fail(lua_State *L, int status, const char *detail) {
  lua_pushnil(L);
  lua_pushinteger(L, status);
  lua_pushstring(L, detail);
  return 3;
}

/* One line ending in CRLF: [*line, *len).  0 when the line ends in a bare
** LF or a lone CR -- front ends that accept either while we accept the
** other disagree on where a message ends (request smuggling). */
static int next_line(cursor *c, const char **line, size_t *len) {
  const char *lf = memchr(c->p, '\n', (size_t)(c->end - c->p));
  if (!lf || lf == c->p || lf[-1] != '\r') return 0;
  *line = c->p;
  *len = (size_t)(lf - 1 - c->p);
  if (memchr(*line, '\r', *len)) return 0;   /* CR inside a line */
  c->p = lf + 1;
  return 1;
}

/* "HTTP/1.x" -> x (0 or 1); -2 for HTTP/2+ or other versions (505),
** -1 for anything that is not an HTTP version at all (400). */
static int version(const char *v, size_t n) {
  if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.') return -1;
  if (v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9') return -1;
  if (v[5] != '1' || (v[7] != '0' && v[7] != '1')) return -2;
  return v[7] - '0';
}

static int scan_fields(lua_State *L, cursor *c, lua_Integer max_headers) {
  const char *line;
  size_t len;
  lua_Integer n = 0;
  lua_newtable(L);
  for (;;) {
    if (!next_line(c, &line, &len)) return fail(L, 400, "bare LF or CR in the head");
    if (len == 0) break;                               /* the blank line */
    /* obs-fold: a continuation line is glued onto the previous field by
       some parsers and taken as a new field by others (smuggling). */
    if (line[0] == ' ' || line[0] == '\t') return fail(L, 400, "obs-fold in a header field");
    const char *colon = memchr(line, ':', len);
    if (!colon || colon == line) return fail(L, 400, "header line without a name");
    /* A name is tchars only: "Content-Length :" (space before the colon)
       is read as Content-Length by some servers and ignored by others. */
    for (const char *q = line; q < colon; q++)
      if (!is_tchar((unsigned char)*q)) return fail(L, 400, "invalid byte in a header name");
    const char *v = colon + 1, *ve = line + len;
    while (v < ve && (*v == ' ' || *v == '\t')) v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
    /* NUL and other CTLs in a value end strings early in C back ends and
       split headers in others (response splitting, log injection). */
    for (const char *q = v; q < ve; q++) {
      unsigned char b = (unsigned char)*q;
      if ((b < 0x20 && b != '\t') || b == 0x7f) return fail(L, 400, "control byte in a header value");
    }
    /* A flood of fields costs memory and hashing time (431). */
    if (++n > max_headers) return fail(L, 431, "too many header fields");
    luaL_Buffer b;
    char *lower = luaL_buffinitsize(L, &b, (size_t)(colon - line));
    for (size_t i = 0; i < (size_t)(colon - line); i++) {
      unsigned char ch = (unsigned char)line[i];
      lower[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    luaL_pushresultsize(&b, (size_t)(colon - line));
    lua_rawseti(L, -2, 2 * n - 1);
    lua_pushlstring(L, v, (size_t)(ve - v));
    lua_rawseti(L, -2, 2 * n);
  }
  /* Bytes after the blank line belong to the body, never to this head. */
  if (c->p != c->end) return fail(L, 400, "data after the head block");
  return 0;
}

static int parse_request(lua_State *L, cursor *c, lua_Integer max_headers) {
  const char *line;
  size_t len;
  if (!next_line(c, &line, &len)) return fail(L, 400, "bare LF or CR in the request line");
  const char *end = line + len;
  const char *sp1 = memchr(line, ' ', len);
  if (!sp1 || sp1 == line) return fail(L, 400, "malformed request line");
  for (const char *q = line; q < sp1; q++)
    if (!is_tchar((unsigned char)*q)) return fail(L, 400, "invalid method");
  const char *t = sp1 + 1;
  const char *sp2 = memchr(t, ' ', (size_t)(end - t));
  /* Exactly one space between the three parts: a second space or a tab
     lets two parsers split the line differently. */
  if (!sp2 || sp2 == t) return fail(L, 400, "malformed request line");
  for (const char *q = t; q < sp2; q++) {
    unsigned char b = (unsigned char)*q;
    if (b <= 0x20 || b == 0x7f) return fail(L, 400, "invalid byte in the target");
  }
  int minor = version(sp2 + 1, (size_t)(end - sp2 - 1));
  /* HTTP/2 prefaces and unknown versions: 505, never a guess. */
  if (minor == -2) return fail(L, 505, "HTTP version not supported");
  if (minor < 0) return fail(L, 400, "malformed HTTP version");
  lua_pushlstring(L, line, (size_t)(sp1 - line));
  lua_pushlstring(L, t, (size_t)(sp2 - t));
  lua_pushinteger(L, minor);
  int r = scan_fields(L, c, max_headers);
  return r ? r : 4;
}

static int parse_response(lua_State *L, cursor *c, lua_Integer max_headers) {
  const char *line;
  size_t len;
  if (!next_line(c, &line, &len)) return fail(L, 400, "bare LF or CR in the status line");
  if (len < 12 || line[8] != ' ' || (len > 12 && line[12] != ' '))
    return fail(L, 400, "malformed status line");
  int minor = version(line, 8);
  if (minor < 0) return fail(L, minor == -2 ? 505 : 400, "unsupported HTTP version in the status line");
  int status = 0;
  for (int i = 9; i < 12; i++) {
    if (line[i] < '0' || line[i] > '9') return fail(L, 400, "malformed status code");
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100) return fail(L, 400, "malformed status code");
  const char *r = len > 13 ? line + 13 : line + len;
  for (const char *q = r; q < line + len; q++) {
    unsigned char b = (unsigned char)*q;
    if ((b < 0x20 && b != '\t') || b == 0x7f) return fail(L, 400, "control byte in the reason");
  }
  lua_pushinteger(L, status);
  lua_pushlstring(L, r, (size_t)(line + len - r));
  lua_pushinteger(L, minor);
  int res = scan_fields(L, c, max_headers);
  return res ? res : 4;
}

static int l_parse_head(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  static const char *const kinds[] = { "request", "response", NULL };
  int kind = luaL_checkoption(L, 2, NULL, kinds);
  lua_Integer max_headers = luaL_optinteger(L, 3, 100);
  cursor c = { s, s + n };
  lua_settop(L, 3);
  return kind == 0 ? parse_request(L, &c, max_headers)
                   : parse_response(L, &c, max_headers);
}

/* parse_chunk_size(line) -> size, or nil: the chunk-size line without its
** CRLF.  Hex digits only, at most 15 of them (an overflowing size wraps to
** a small one in some parsers: smuggling), then optional extensions. */
static int l_parse_chunk_size(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  size_t i = 0;
  lua_Integer size = 0;
  for (; i < n; i++) {
    char ch = s[i];
    int d = ch >= '0' && ch <= '9' ? ch - '0'
          : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
          : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
    if (d < 0) break;
    if (i >= 15) return 0;
    size = size * 16 + d;
  }
  if (i == 0) return 0;
  /* After the digits only OWS then ";ext": anything else (a second number,
     "0x", a bare CR) is framing two parsers may read differently. */
  while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
  if (i < n && s[i] != ';') return 0;
  for (; i < n; i++) {
    unsigned char b = (unsigned char)s[i];
    if ((b < 0x20 && b != '\t') || b == 0x7f) return 0;
  }
  lua_pushinteger(L, size);
  return 1;
}

int luaopen_corio__http(lua_State *L) {
  static const luaL_Reg fns[] = {
    { "parse_head", l_parse_head },
    { "parse_chunk_size", l_parse_chunk_size },
    { "inflater", corio__http_inflater },
    { NULL, NULL }
  };
  luaL_newlib(L, fns);
  return 1;
}
