/*
** head.c -- corio._http: HTTP/1.x heads and chunked bodies.
**
** Two layers on the same bytes.  The parsing is libhttp-parser's (Debian
** libhttp-parser-dev 2.9.4): method, target, version, header fields,
** Content-Length, keep-alive, upgrade, and the decoding of chunked
** bodies.  Debian builds that library lax (HTTP_PARSER_STRICT=0), so a
** strict guard runs first and the parser only ever sees bytes the guard
** accepted: every rule of the guard names the attack it stops (request
** smuggling when a front end and this parser disagree on where a
** message ends).  Nothing here calls into Lua while parsing: the reading
** task hands a buffer in and takes the results out (pull model).
**
**   parser(kind) -> Parser ("request" or "response"), one per connection
**   Parser:request(block, max_headers)
**       -> method, target, minor, names, values, framing, length, keep, upgrade
**       framing: "length" (length bytes), "chunked" or "none"
**   Parser:next(buf, pos, max_headers, max_size)   (the server's fast path)
**       -> method, target, minor, framing, length, keep, expect, next, from,
**          path, query
**       or false while buf holds no whole head; fields(buf, from, next)
**       -> names, values later, when the handler asks for the headers
**   Parser:limits(max_headers, max_size, max_url, max_body)
**   Parser:take(buf, pos, Request, Response, conn [, max_size])
**       -> req, res, next, keep, framing, length: next() and the making
**       of the server's Request and Response in one call (see l_take)
**   Parser:response(block, max_headers, no_body)
**       -> status, reason, minor, names, values
**   Parser:response_at(buf, pos, max_size, max_headers, no_body [, scanned])
**       -> next, status, reason, minor, names, values, length, te,
**          connection, content_encoding, location: the same on the head at
**          pos of buf, found there (the client's reading), with what the
**          client decides by; or false while buf holds no whole head
**       no_body: the answer to a HEAD request; 1xx, 204 and 304 have no
**       body either, whatever their fields say
**   Parser:chunk(buf, pos) -> data, newpos, done
**       decodes a chunked body: the parser that read the head goes on
**       with the body (a request's, or a response's when its head was
**       chunked and it has a body)
**   names are lowercase; values lose their surrounding whitespace.
**   On a bad head or body: nil, status (400/431/501/505), detail.
*/
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <http_parser.h>
#include <lua.h>
#include <lauxlib.h>
#include "http.h"

int luaopen_corio__http(lua_State *L);

#define PARSER_MT CORIO_HTTP_PARSER_MT
#define MAX_CHUNK_LINE 4096     /* a chunk-size line or a trailer */
#define MAX_TRAILERS 100        /* trailer fields after the last chunk */
#define MAX_TRAILER_BYTES 16384 /* all of them: refused here, before the
                                   parser's own limit (80 KiB) can be hit */
#define MAX_EXT_BYTES 16384     /* chunk extensions of a whole body: each
                                   line is bounded, but a body of 1-byte
                                   chunks with 4 KiB extensions would carry
                                   4,000 times its size (the pattern of
                                   Node's CVE-2024-22019) */

/* ------------------------------------------------------------ the guard */

/* RFC 9110 tchar: the only bytes a method or a field name may hold
** (shared with respond.c and wshand.c through http.h). */
const unsigned char corio__http_tchar[256] = {
  ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1,
  ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,
  ['~'] = 1,
  ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,
  ['7'] = 1, ['8'] = 1, ['9'] = 1,
  ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1,
  ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
  ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,
  ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
  ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1,
  ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
  ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
  ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static int is_ctl(unsigned char b) { return (b < 0x20 && b != '\t') || b == 0x7f; }

typedef struct {
  int status;             /* 0: accepted; else 400/431/501/505 */
  const char *detail;
  int minor;
  int hosts, tes, cls;    /* field counts the request rules need */
  int te_chunked;         /* the one Transfer-Encoding is exactly "chunked" */
} guard;

static int reject(guard *g, int status, const char *detail) {
  g->status = status;
  g->detail = detail;
  return 0;
}

int corio__http_ieq(const char *a, const char *lower, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)a[i];
    if ((c >= 'A' && c <= 'Z' ? c + 32 : c) != (unsigned char)lower[i]) return 0;
  }
  return 1;
}

/* One line ending in CRLF: [*line, *len).  0 when the line ends in a bare
** LF or holds a lone CR -- front ends that accept either while we accept
** the other disagree on where a message ends (smuggling). */
static int next_line(const char **p, const char *end, const char **line, size_t *len) {
  const char *lf = memchr(*p, '\n', (size_t)(end - *p));
  if (!lf || lf == *p || lf[-1] != '\r') return 0;
  *line = *p;
  *len = (size_t)(lf - 1 - *p);
  if (memchr(*line, '\r', *len)) return 0;
  *p = lf + 1;
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

static int hexval(unsigned char c);   /* below */

/* RFC 3986 unreserved and sub-delims: a reg-name's bytes besides %HH.
** They are the tchars but "#%^`|", and "(),;=" (no strchr: every
** request's Host goes through here). */
static inline int host_char(unsigned char c) {
  if (tchar[c]) return c != '#' && c != '%' && c != '^' && c != '`' && c != '|';
  return c == '(' || c == ')' || c == ',' || c == ';' || c == '=';
}

/* A Host value is uri-host [":" port] (RFC 9112 3.2; empty is allowed):
** an IP literal in brackets or a reg-name (an IPv4 address is one), then
** digits.  "a b", "good/evil", "user@evil" route differently in a front
** end and a back end: 400. */
static int valid_host(const char *v, size_t n) {
  size_t i = 0;
  if (n > 0 && v[0] == '[') {
    for (i = 1; i < n && v[i] != ']'; i++)
      if (!host_char((unsigned char)v[i]) && v[i] != ':') return 0;
    if (i == n || i == 1) return 0;
    i++;
  } else {
    for (; i < n && v[i] != ':'; i++) {
      if (v[i] == '%') {
        if (i + 2 >= n || hexval((unsigned char)v[i + 1]) < 0 ||
            hexval((unsigned char)v[i + 2]) < 0) return 0;
        i += 2;
      } else if (!host_char((unsigned char)v[i])) return 0;
    }
  }
  if (i == n) return 1;
  if (v[i] != ':') return 0;
  for (i++; i < n; i++)
    if (v[i] < '0' || v[i] > '9') return 0;
  return 1;
}

static int guard_fields(guard *g, const char *p, const char *end, lua_Integer max_headers) {
  const char *line;
  size_t len;
  lua_Integer n = 0;
  for (;;) {
    if (!next_line(&p, end, &line, &len)) return reject(g, 400, "bare LF or CR in the head");
    if (len == 0) break;                               /* the blank line */
    /* obs-fold: a continuation line is glued onto the previous field by
       some parsers and taken as a new field by others. */
    if (line[0] == ' ' || line[0] == '\t') return reject(g, 400, "obs-fold in a header field");
    const char *colon = memchr(line, ':', len);
    if (!colon || colon == line) return reject(g, 400, "header line without a name");
    /* A name is tchars only: "Transfer-Encoding : chunked" (space before
       the colon) is taken as chunked by the lax parser and ignored by
       others (Go CVE-2019-16276, Node CVE-2021-22959). */
    for (const char *q = line; q < colon; q++)
      if (!tchar[(unsigned char)*q]) return reject(g, 400, "invalid byte in a header name");
    const char *v = colon + 1, *ve = line + len;
    while (v < ve && (*v == ' ' || *v == '\t')) v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
    /* NUL and other CTLs in a value end strings early in C back ends and
       split headers in others (response splitting, log injection). */
    for (const char *q = v; q < ve; q++)
      if (is_ctl((unsigned char)*q)) return reject(g, 400, "control byte in a header value");
    /* The parser has no count limit: a flood of fields costs memory. */
    if (++n > max_headers) return reject(g, 431, "too many header fields");
    size_t nl = (size_t)(colon - line), vl = (size_t)(ve - v);
    if (ieq(line, nl, "host")) {
      g->hosts++;
      if (!valid_host(v, vl)) return reject(g, 400, "invalid Host");
    } else if (ieq(line, nl, "content-length")) {
      /* digits only: "+5", "5,5", "0x5" parse differently elsewhere */
      if (vl == 0 || vl > 15) return reject(g, 400, "invalid Content-Length");
      for (size_t i = 0; i < vl; i++)
        if (v[i] < '0' || v[i] > '9') return reject(g, 400, "invalid Content-Length");
      g->cls++;
    } else if (ieq(line, nl, "transfer-encoding")) {
      g->tes++;
      g->te_chunked = ieq(v, vl, "chunked");
    }
  }
  /* Bytes after the blank line belong to the body, never to this head. */
  if (p != end) return reject(g, 400, "data after the head block");
  return 1;
}

static int guard_request(guard *g, const char *s, size_t n, lua_Integer max_headers) {
  const char *p = s, *end = s + n, *line;
  size_t len;
  if (!next_line(&p, end, &line, &len)) return reject(g, 400, "bare LF or CR in the request line");
  const char *le = line + len;
  const char *sp1 = memchr(line, ' ', len);
  if (!sp1 || sp1 == line) return reject(g, 400, "malformed request line");
  for (const char *q = line; q < sp1; q++)
    if (!tchar[(unsigned char)*q]) return reject(g, 400, "invalid method");
  const char *t = sp1 + 1;
  const char *sp2 = memchr(t, ' ', (size_t)(le - t));
  /* Exactly one space between the three parts: a second space or a tab
     lets two parsers split the line differently. */
  if (!sp2 || sp2 == t) return reject(g, 400, "malformed request line");
  for (const char *q = t; q < sp2; q++) {
    unsigned char b = (unsigned char)*q;
    if (b <= 0x20 || b == 0x7f) return reject(g, 400, "invalid byte in the target");
  }
  g->minor = version(sp2 + 1, (size_t)(le - sp2 - 1));
  /* HTTP/2 prefaces and unknown versions: 505, never a guess. */
  if (g->minor == -2) return reject(g, 505, "HTTP version not supported");
  if (g->minor < 0) return reject(g, 400, "malformed HTTP version");
  if (!guard_fields(g, p, end, max_headers)) return 0;
  /* A request's framing must be unambiguous: CL with TE is the classic
     CL.TE / TE.CL smuggling; anything but one "chunked" ("gzip, chunked",
     "chunked, identity", two fields) is read differently elsewhere; an
     HTTP/1.0 peer or proxy knows no Transfer-Encoding at all. */
  if (g->tes) {
    if (g->cls) return reject(g, 400, "both Content-Length and Transfer-Encoding");
    if (g->minor == 0) return reject(g, 400, "Transfer-Encoding on HTTP/1.0");
    if (g->tes != 1 || !g->te_chunked) return reject(g, 501, "Transfer-Encoding other than chunked");
  }
  if (g->cls > 1) return reject(g, 400, "several Content-Length fields");
  /* Host decides routing in front ends: exactly one on HTTP/1.1. */
  if (g->hosts > 1) return reject(g, 400, "several Host fields");
  if (g->minor == 1 && g->hosts == 0) return reject(g, 400, "no Host on HTTP/1.1");
  return 1;
}

static int guard_response(guard *g, const char *s, size_t n, lua_Integer max_headers) {
  const char *p = s, *end = s + n, *line;
  size_t len;
  if (!next_line(&p, end, &line, &len)) return reject(g, 400, "bare LF or CR in the status line");
  if (len < 12 || line[8] != ' ' || (len > 12 && line[12] != ' '))
    return reject(g, 400, "malformed status line");
  g->minor = version(line, 8);
  if (g->minor < 0)
    return reject(g, g->minor == -2 ? 505 : 400, "unsupported HTTP version in the status line");
  for (int i = 9; i < 12; i++)
    if (line[i] < '0' || line[i] > '9') return reject(g, 400, "malformed status code");
  if (line[9] == '0') return reject(g, 400, "malformed status code");
  for (const char *q = len > 13 ? line + 13 : line + len; q < line + len; q++)
    if (is_ctl((unsigned char)*q)) return reject(g, 400, "control byte in the reason");
  return guard_fields(g, p, end, max_headers);
}

/* ------------------------------------------------------------ the parser */

typedef struct { const char *p; size_t n; } span;

/* The chunk framing guard's states (see chunk_guard). */
enum { CG_SIZE0, CG_SIZE, CG_OWS, CG_EXT, CG_SIZE_LF, CG_DATA, CG_DATA_CR,
       CG_DATA_LF, CG_TRL0, CG_TRLNAME, CG_TRL, CG_TRL_LF, CG_END_LF, CG_DONE };

struct Parser {
  http_parser p;
  int kind;                /* HTTP_REQUEST or HTTP_RESPONSE */
  /* the head being parsed: spans into its block */
  span url, status;
  span *f;                 /* 2 per field: name, value */
  size_t nf, cap;
  int last;                /* 1 after a name callback, 2 after a value */
  int complete, headers_done;
  int no_body;             /* a response without a body (HEAD, 1xx, 204, 304) */
  int chunked;             /* the head announced a chunked body (see on_headers_complete) */
  /* the body: chunk framing guard state, decoded output */
  int cg;
  uint64_t left;
  size_t linelen;
  int digits, trailers;
  size_t trlbytes;         /* bytes of the trailer section so far */
  size_t extbytes;         /* chunk-extension bytes of this body so far */
  luaL_Buffer *out;
  /* the server's limits, for take() (set by limits()) */
  lua_Integer max_headers, max_size, max_url, max_body;
  struct corio_rt *rt;     /* the serve loop's runtime, found once */
  http_deadline dl;
  http_arm arm;            /* on its server's armed list (armed.c) */
};

static int on_url(http_parser *hp, const char *at, size_t n) {
  Parser *P = (Parser *)hp;
  if (P->url.n) P->url.n += n; else { P->url.p = at; P->url.n = n; }
  return 0;
}

static int on_status(http_parser *hp, const char *at, size_t n) {
  Parser *P = (Parser *)hp;
  if (P->status.n) P->status.n += n; else { P->status.p = at; P->status.n = n; }
  return 0;
}

/* Both run on one contiguous block, so a field is one span; a callback
** that continues the previous one (same kind) extends it. */
static int on_field(http_parser *hp, const char *at, size_t n) {
  Parser *P = (Parser *)hp;
  if (P->headers_done) return 0;           /* trailers: dropped */
  if (P->last == 1) { P->f[P->nf - 2].n += n; return 0; }
  if (P->nf + 2 > P->cap) return 1;        /* more than the guard counted */
  P->f[P->nf].p = at; P->f[P->nf].n = n;
  P->f[P->nf + 1].p = at; P->f[P->nf + 1].n = 0;
  P->nf += 2;
  P->last = 1;
  return 0;
}

static int on_value(http_parser *hp, const char *at, size_t n) {
  Parser *P = (Parser *)hp;
  if (P->headers_done || P->nf == 0) return 0;
  span *v = &P->f[P->nf - 1];
  if (P->last == 2) v->n += n; else { v->p = at; v->n = n; }
  P->last = 2;
  return 0;
}

/* Returning 1 tells http_parser that the message has no body (its
** F_SKIPBODY): a response to HEAD, a 1xx, 204 or 304, which the lax
** parser would otherwise read a Content-Length body or chunks for. */
static int on_headers_complete(http_parser *hp) {
  Parser *P = (Parser *)hp;
  P->headers_done = 1;
  if (P->kind == HTTP_RESPONSE &&
      (P->no_body || hp->status_code < 200 || hp->status_code == 204 || hp->status_code == 304)) {
    P->no_body = 1;
    return 1;
  }
  /* Kept apart from the parser's F_CHUNKED, which a trailer field named
     Transfer-Encoding clears while the body is still being read. */
  P->chunked = (hp->flags & F_CHUNKED) != 0;
  return 0;
}

static int on_body(http_parser *hp, const char *at, size_t n) {
  Parser *P = (Parser *)hp;
  if (P->out) luaL_addlstring(P->out, at, n);
  return 0;
}

/* The end of the message: pause, so bytes after it (a pipelined request)
** stay for the next one. */
static int on_message_complete(http_parser *hp) {
  ((Parser *)hp)->complete = 1;
  http_parser_pause(hp, 1);
  return 0;
}

static const http_parser_settings settings = {
  .on_url = on_url, .on_status = on_status,
  .on_header_field = on_field, .on_header_value = on_value,
  .on_headers_complete = on_headers_complete, .on_body = on_body,
  .on_message_complete = on_message_complete,
};

/* The methods hold the metatable as upvalue 1: comparing with it costs
** less than luaL_checkudata's registry lookup by name, per request. */
Parser *corio__http_check_parser(lua_State *L, int idx) {
  void *p = lua_touserdata(L, idx);
  if (p == NULL || !lua_getmetatable(L, idx) || !lua_rawequal(L, -1, lua_upvalueindex(1)))
    luaL_typeerror(L, idx, PARSER_MT);
  lua_pop(L, 1);
  return (Parser *)p;
}
#define check_parser(L) corio__http_check_parser((L), 1)

lua_Integer corio__http_max_size(const Parser *P) {
  return P->max_size;
}

http_deadline *corio__http_deadline(Parser *P) {
  return &P->dl;
}

int corio__http_minor(const Parser *P) {
  return P->p.http_minor;
}

int corio__http_is_head(const Parser *P) {
  return P->p.method == HTTP_HEAD;
}

struct corio_rt **corio__http_rt_slot(Parser *P) {
  return &P->rt;
}

http_arm *corio__http_parser_arm(Parser *P) {
  return &P->arm;
}

static Parser *new_parser(lua_State *L, int kind) {
  /* user value 1: the armed list it is numbered in (armed.c) */
  Parser *P = (Parser *)lua_newuserdatauv(L, sizeof(Parser), 1);
  memset(P, 0, sizeof *P);
  P->kind = kind;
  luaL_setmetatable(L, PARSER_MT);
  return P;
}

static int parser_gc(lua_State *L) {
  Parser *P = check_parser(L);
  void *ud;
  lua_Alloc f = lua_getallocf(L, &ud);
  corio__http_unarm(&P->arm);              /* collected while armed */
  if (P->f) f(ud, P->f, P->cap * sizeof(span), 0);
  P->f = NULL;
  P->cap = 0;
  return 0;
}

static int fail(lua_State *L, int status, const char *detail) {
  lua_pushnil(L);
  lua_pushinteger(L, status);
  lua_pushstring(L, detail);
  return 3;
}

/* Guard then parse one head block; 0 and the error pushed (3 values) on
** failure, 1 when P holds the parsed head. */
static int run_head(lua_State *L, Parser *P, const char *s, size_t n, lua_Integer max_headers,
                    int no_body, int *nret) {
  guard g;
  memset(&g, 0, sizeof g);
  if (max_headers < 0) max_headers = 0;
  if (max_headers > 100000) max_headers = 100000;
  int ok = P->kind == HTTP_REQUEST ? guard_request(&g, s, n, max_headers)
                                   : guard_response(&g, s, n, max_headers);
  if (!ok) { *nret = fail(L, g.status, g.detail); return 0; }
  size_t need = 2 * (size_t)max_headers + 2;
  if (P->cap < need) {
    void *ud;
    lua_Alloc f = lua_getallocf(L, &ud);
    span *nf = (span *)f(ud, P->f, P->cap * sizeof(span), need * sizeof(span));
    if (!nf) luaL_error(L, "not enough memory");
    P->f = nf;
    P->cap = need;
  }
  http_parser_init(&P->p, (enum http_parser_type)P->kind);
  P->url.n = P->status.n = 0;
  P->nf = 0;
  P->last = 0;
  P->complete = P->headers_done = 0;
  P->no_body = no_body;
  P->chunked = 0;
  P->cg = CG_SIZE0;
  P->linelen = 0;
  P->digits = P->trailers = 0;
  P->trlbytes = P->extbytes = 0;
  P->out = NULL;
  size_t used = http_parser_execute(&P->p, &settings, s, n);
  enum http_errno e = HTTP_PARSER_ERRNO(&P->p);
  if (e == HPE_PAUSED) {                  /* a message without a body */
    http_parser_pause(&P->p, 0);
    e = HPE_OK;
  }
  if (e != HPE_OK || !P->headers_done || used != n) {
    int st = e == HPE_INVALID_METHOD ? 501 : e == HPE_HEADER_OVERFLOW ? 431 : 400;
    *nret = fail(L, st, e != HPE_OK ? http_errno_description(e) : "incomplete head");
    return 0;
  }
  return 1;
}

static void push_lower(lua_State *L, span s) {
  char tmp[64];
  luaL_Buffer b;
  char *d = s.n <= sizeof tmp ? tmp : luaL_buffinitsize(L, &b, s.n);
  for (size_t i = 0; i < s.n; i++) {
    unsigned char c = (unsigned char)s.p[i];
    d[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
  }
  if (d == tmp) lua_pushlstring(L, tmp, s.n);
  else luaL_pushresultsize(&b, s.n);
}

/* the parser keeps trailing whitespace in a value: OWS is not part of it */
static span trim_value(span s) {
  while (s.n && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t')) s.n--;
  return s;
}

static void push_value(lua_State *L, span s) {
  s = trim_value(s);
  lua_pushlstring(L, s.p, s.n);
}

/* Pushes the framing of the parsed head: kind, length [-0,+2]. */
static void push_framing(lua_State *L, Parser *P) {
  http_parser *hp = &P->p;
  if (P->chunked) {
    lua_pushliteral(L, "chunked");
    lua_pushinteger(L, 0);
  } else if (hp->content_length != ULLONG_MAX && (hp->flags & F_CONTENTLENGTH)) {
    lua_pushliteral(L, "length");
    lua_pushinteger(L, (lua_Integer)hp->content_length);
  } else {
    lua_pushliteral(L, "none");
    lua_pushinteger(L, 0);
  }
}

/* the head's fields as two lists: lowercase names, values */
static void push_fields(lua_State *L, Parser *P) {
  size_t nf = P->nf / 2;
  lua_createtable(L, (int)nf, 0);
  lua_createtable(L, (int)nf, 0);
  for (size_t i = 0; i < nf; i++) {
    push_lower(L, P->f[2 * i]);
    lua_rawseti(L, -3, (lua_Integer)i + 1);
    push_value(L, P->f[2 * i + 1]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

/* Parser:request(block, max_headers) */
static int l_request(lua_State *L) {
  Parser *P = check_parser(L);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  lua_Integer max_headers = luaL_optinteger(L, 3, 100);
  int nret;
  if (P->kind != HTTP_REQUEST) return luaL_argerror(L, 1, "a request parser expected");
  if (!run_head(L, P, s, n, max_headers, 0, &nret)) return nret;
  http_parser *hp = &P->p;
  lua_pushstring(L, http_method_str((enum http_method)hp->method));
  lua_pushlstring(L, P->url.p, P->url.n);
  lua_pushinteger(L, hp->http_minor);
  push_fields(L, P);
  push_framing(L, P);
  lua_pushboolean(L, http_should_keep_alive(hp));
  lua_pushboolean(L, hp->upgrade);
  return 9;
}

/* The end of a head in s[0, n): the byte after its blank line, or 0. */
size_t corio__http_head_end(const char *s, size_t n) {
  const char *p = s, *end = s + n;
  while (end - p >= 4) {
    const char *cr = memchr(p, '\r', (size_t)(end - p) - 3);
    if (!cr) return 0;
    if (cr[1] == '\n' && cr[2] == '\r' && cr[3] == '\n') return (size_t)(cr + 4 - s);
    p = cr + 1;
  }
  return 0;
}

#define head_end corio__http_head_end

/* Where the path of an absolute-form target ("http://host/p?q", RFC 9112
** 3.2.2: what a proxy is sent) starts, past its scheme and authority; 0
** for any other form. */
static size_t absolute_form(const char *t, size_t n) {
  size_t i = 0;
  if (n == 0 || !((t[0] | 0x20) >= 'a' && (t[0] | 0x20) <= 'z')) return 0;
  while (i < n && (tchar[(unsigned char)t[i]] && t[i] != ':')) i++;
  if (i + 3 > n || memcmp(t + i, "://", 3) != 0) return 0;
  for (i += 3; i < n && t[i] != '/' && t[i] != '?' && t[i] != '#'; i++) {}
  return i;
}

/* Pushes the path and the query of a target [-0,+2]: the path is the
** target up to its first '?' or '#' (of an absolute-form target, what
** follows its authority, "/" when nothing does), %XX escapes decoded; the
** query what follows a '?' up to a '#', or nil when empty.  ti: the
** target's index, pushed again when it is the path (no copy). */
static void push_path(lua_State *L, const char *t, size_t n, int ti) {
  size_t a = absolute_form(t, n);
  t += a;
  n -= a;
  size_t i = 0, pct = 0;
  for (; i < n && t[i] != '?' && t[i] != '#'; i++) pct += t[i] == '%';
  if (a > 0 && i == 0) lua_pushliteral(L, "/");   /* "http://h", "http://h?q" */
  else if (a == 0 && i == n && pct == 0) lua_pushvalue(L, ti);
  else if (pct == 0) lua_pushlstring(L, t, i);
  else {
    luaL_Buffer b;
    char *d = luaL_buffinitsize(L, &b, i), *d0 = d;
    for (size_t k = 0; k < i; k++) {
      int hi, lo;
      if (t[k] == '%' && k + 2 < i && (hi = hexval((unsigned char)t[k + 1])) >= 0 &&
          (lo = hexval((unsigned char)t[k + 2])) >= 0) {
        *d++ = (char)(hi * 16 + lo);
        k += 2;
      } else {
        *d++ = t[k];
      }
    }
    luaL_pushresultsize(&b, (size_t)(d - d0));
  }
  if (i < n && t[i] == '?') {
    size_t q = ++i;
    while (i < n && t[i] != '#') i++;
    if (i > q) { lua_pushlstring(L, t + q, i - q); return; }
  }
  lua_pushnil(L);
}

/* Parser:next(buf, pos, max_headers, max_size): the server's fast path.
** The head starts at pos of a read buffer; when no "\r\n\r\n" ends it
** within max_size bytes, returns false (the caller reads more, under its
** header deadline) and parses nothing.  Else the head is guarded and
** parsed as by request(), but the fields stay in buf, for fields():
**   -> method, target, minor, framing, length, keep, expect, next, from,
**      path, query
** expect: the Expect value (repeats joined) or nil; next: the position
** after the head; from: where its field lines start; path: the target
** before any '?' or '#', %XX decoded; query: after '?' (nil if empty). */
static int l_next(lua_State *L) {
  Parser *P = check_parser(L);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  lua_Integer pos = luaL_checkinteger(L, 3);
  lua_Integer max_headers = luaL_checkinteger(L, 4);
  lua_Integer max = luaL_checkinteger(L, 5);
  int nret;
  if (P->kind != HTTP_REQUEST) return luaL_argerror(L, 1, "a request parser expected");
  luaL_argcheck(L, pos >= 1 && (size_t)pos <= n + 1, 3, "out of range");
  size_t avail = n - (size_t)(pos - 1), e;
  if (max >= 0 && (lua_Unsigned)max < avail) avail = (size_t)max;
  s += pos - 1;
  e = head_end(s, avail);
  if (e == 0) { lua_pushboolean(L, 0); return 1; }
  if (!run_head(L, P, s, e, max_headers, 0, &nret)) return nret;
  http_parser *hp = &P->p;
  lua_pushstring(L, http_method_str((enum http_method)hp->method));
  lua_pushlstring(L, P->url.p, P->url.n);
  lua_pushinteger(L, hp->http_minor);
  push_framing(L, P);
  lua_pushboolean(L, http_should_keep_alive(hp));
  size_t nf = P->nf / 2;
  int nexpect = 0;                          /* Expect, repeats joined */
  for (size_t i = 0; i < nf; i++)
    if (ieq(P->f[2 * i].p, P->f[2 * i].n, "expect")) {
      if (nexpect++) lua_pushliteral(L, ", ");
      push_value(L, P->f[2 * i + 1]);
      if (nexpect > 1) lua_concat(L, 3);
    }
  if (nexpect == 0) lua_pushnil(L);
  lua_pushinteger(L, pos + (lua_Integer)e);
  lua_pushinteger(L, pos + (lua_Integer)((const char *)memchr(s, '\n', e) - s) + 1);
  push_path(L, P->url.p, P->url.n, lua_gettop(L) - 7);   /* the target */
  return 11;
}

/* Parser:limits(max_headers, max_header_size, max_url_size, max_body_size):
** a server connection's limits, stored once for take(). */
static int l_limits(lua_State *L) {
  Parser *P = check_parser(L);
  P->max_headers = luaL_checkinteger(L, 2);
  P->max_size = luaL_checkinteger(L, 3);
  P->max_url = luaL_checkinteger(L, 4);
  P->max_body = luaL_checkinteger(L, 5);
  return 0;
}

/* The Expect values of the parsed head, repeats joined, pushed; 0 (and
** nothing pushed) when there is none. */
static int push_expect(lua_State *L, Parser *P) {
  size_t nf = P->nf / 2;
  int nexpect = 0;
  for (size_t i = 0; i < nf; i++)
    if (ieq(P->f[2 * i].p, P->f[2 * i].n, "expect")) {
      if (nexpect++) lua_pushliteral(L, ", ");
      push_value(L, P->f[2 * i + 1]);
      if (nexpect > 1) lua_concat(L, 3);
    }
  return nexpect;
}

/* Parser:take(buf, pos, Request, Response, conn [, max_size]): next()
** and the making of the server's Request and Response in one call, with
** the limits given to limits() (max_size overrides max_header_size).
**   -> req, res, next, keep, framing, length
**   or false while buf holds no whole head,
**   or nil, status, detail for a bad head (400/413/414/417/431/501/505).
** req = setmetatable({ method, _b = buf, _p = pos (when > 1), _continue,
**   _res = res }, Request)  (the rest -- target, path, query, minor, where
**   the fields start -- is made from _b on first use, by line(); the
**   connection is res._c)
** res = setmetatable({ _c = conn, _req = req }, Response)  (headers_sent
**   and finished are the class's false until set)
** _continue is true for "Expect: 100-continue" on HTTP/1.1 (on HTTP/1.0
** it is ignored: RFC 9110 10.1.1); any other Expect is a 417.  A CONNECT
** with a body (Content-Length or Transfer-Encoding) is a 400: the parser
** ends a CONNECT at its head, so its body would be read as the next
** request (RFC 9110 9.3.6: a CONNECT has no content). */
static int l_take(lua_State *L) {
  Parser *P = check_parser(L);
  luaL_checkstring(L, 2);
  lua_Integer pos = luaL_checkinteger(L, 3);
  luaL_checktype(L, 4, LUA_TTABLE);
  luaL_checktype(L, 5, LUA_TTABLE);
  lua_Integer max = luaL_optinteger(L, 7, P->max_size);
  if (P->kind != HTTP_REQUEST) return luaL_argerror(L, 1, "a request parser expected");
  lua_settop(L, 6);
  return corio__http_take_at(L, P, 2, pos, max, 4, 5, 6);
}

/* take()'s work on the string at bidx, for take() and the serve loop
** (serve.c): the Request (metatable at reqmt), the Response (resmt) of
** the connection table at connidx.  Runs in a function that has take's
** upvalues.  Pushes take's results; returns how many. */
int corio__http_take_at(lua_State *L, Parser *P, int bidx, lua_Integer pos, lua_Integer max,
                        int reqmt, int resmt, int connidx) {
  size_t n;
  const char *s0 = lua_tolstring(L, bidx, &n), *s;
  int nret;
  luaL_argcheck(L, pos >= 1 && (size_t)pos <= n + 1, 3, "out of range");
  size_t avail = n - (size_t)(pos - 1), e;
  if (max >= 0 && (lua_Unsigned)max < avail) avail = (size_t)max;
  s = s0 + pos - 1;
  e = head_end(s, avail);
  if (e == 0) { lua_pushboolean(L, 0); return 1; }
  if (!run_head(L, P, s, e, P->max_headers, 0, &nret)) return nret;
  http_parser *hp = &P->p;
  if (P->max_url >= 0 && (lua_Unsigned)P->max_url < P->url.n)
    return fail(L, 414, "request target too long");
  int chunked = P->chunked;
  int has_len = !chunked && hp->content_length != ULLONG_MAX && (hp->flags & F_CONTENTLENGTH);
  if (has_len && P->max_body >= 0 && hp->content_length > (uint64_t)P->max_body)
    return fail(L, 413, "body too large");
  if (hp->method == HTTP_CONNECT && (chunked || (hp->flags & F_CONTENTLENGTH)))
    return fail(L, 400, "CONNECT with a body");
  int cont = 0, top = lua_gettop(L);
  if (push_expect(L, P)) {                  /* top+1: the Expect value */
    size_t el;
    const char *ev = lua_tolstring(L, top + 1, &el);
    if (!ieq(ev, el, "100-continue"))
      return fail(L, 417, "unsupported Expect");
    cont = hp->http_minor == 1;             /* HTTP/1.0: ignored */
    lua_settop(L, top);
  }
  luaL_checkstack(L, 12, "take");
  int rq = top + 1, rs = top + 2;
  lua_createtable(L, 0, 4);                 /* rq: req (its eager fields) */
  if (resmt) lua_createtable(L, 0, 2);      /* rs: res */
  else lua_pushnil(L);                      /* (made when used: see below) */
  /* key first, then the value: no rotation */
#define KEY(k) lua_pushvalue(L, HTTP_KEY(k))
#define SETK(t, k, push) (KEY(k), (push), lua_rawset(L, (t)))
  KEY(method);
  if (lua_rawgeti(L, lua_upvalueindex(2), (lua_Integer)hp->method + 1) != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_pushstring(L, http_method_str((enum http_method)hp->method));
  }
  lua_rawset(L, rq);
  SETK(rq, _b, lua_pushvalue(L, bidx));
  if (pos > 1) SETK(rq, _p, lua_pushinteger(L, pos));   /* else where _b starts */
  if (cont) SETK(rq, _continue, lua_pushboolean(L, 1));
  lua_pushvalue(L, reqmt);
  lua_setmetatable(L, rq);
  if (!resmt) {       /* the Response is made by req._res on first use */
    SETK(rq, _c, lua_pushvalue(L, connidx));
    goto done;
  }
  SETK(rq, _res, lua_pushvalue(L, rs));
  /* headers_sent and finished are false by the Response class until set */
  SETK(rs, _c, lua_pushvalue(L, connidx));
  SETK(rs, _req, lua_pushvalue(L, rq));
  lua_pushvalue(L, resmt);
  lua_setmetatable(L, rs);
#undef KEY
#undef SETK
done:
  lua_pushinteger(L, pos + (lua_Integer)e);
  lua_pushboolean(L, http_should_keep_alive(hp));
  push_framing(L, P);
  return 6;
}

/* line(buf [, pos]) -> target, path, query, minor, from: the request
** line of a head that take() accepted, starting at pos of buf (1), for
** the Request's fields made on first use (target, path, _q, minor, _hf:
** see Request.__index in _http_server.lua).  The guard checked the line:
** "METHOD SP target SP HTTP/1.x CRLF". */
static int l_line(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_Integer pos = luaL_optinteger(L, 2, 1);
  luaL_argcheck(L, pos >= 1 && (size_t)pos <= n, 2, "out of range");
  const char *p = s + pos - 1, *end = s + n;
  const char *lf = memchr(p, '\n', (size_t)(end - p));
  const char *t = lf ? memchr(p, ' ', (size_t)(lf - p)) : NULL;
  const char *te = t ? memchr(t + 1, ' ', (size_t)(lf - t - 1)) : NULL;
  if (!te || lf - te < 10) return luaL_argerror(L, 1, "not a request head");
  t++;
  lua_pushlstring(L, t, (size_t)(te - t));
  push_path(L, t, (size_t)(te - t), lua_gettop(L));
  lua_pushinteger(L, te[8] - '0');          /* " HTTP/1.x" */
  lua_pushinteger(L, (lua_Integer)(lf - s) + 2);
  return 5;
}

/* fields(buf, from, to) -> names, values: the field lines of a head that
** next() accepted, from `from` to its blank line before `to`; names
** lowercase, values without their surrounding whitespace (as request()
** gives them). */
static int l_fields(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_Integer from = luaL_checkinteger(L, 2), to = luaL_checkinteger(L, 3);
  luaL_argcheck(L, from >= 1 && from <= to && (size_t)to <= n + 1, 2, "out of range");
  const char *p = s + from - 1, *end = s + to - 1;
  lua_newtable(L);
  lua_newtable(L);
  for (lua_Integer i = 1; p < end; i++) {
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    if (!lf || lf - p < 1) break;
    const char *le = lf - 1;                /* the CR */
    if (le == p) break;                     /* the blank line */
    const char *colon = memchr(p, ':', (size_t)(le - p));
    if (!colon) break;
    const char *v = colon + 1, *ve = le;
    while (v < ve && (*v == ' ' || *v == '\t')) v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
    span name = { p, (size_t)(colon - p) }, val = { v, (size_t)(ve - v) };
    push_lower(L, name);
    lua_rawseti(L, -3, i);
    push_value(L, val);
    lua_rawseti(L, -2, i);
    p = lf + 1;
  }
  return 2;
}

/* a response head s[0, n) guarded and parsed: pushes status, reason,
** minor, names, values (5) or the error (3); returns how many */
static int response_of(lua_State *L, Parser *P, const char *s, size_t n,
                       lua_Integer max_headers, int no_body) {
  int nret;
  if (P->kind != HTTP_RESPONSE) return luaL_argerror(L, 1, "a response parser expected");
  if (!run_head(L, P, s, n, max_headers, no_body, &nret)) return nret;
  http_parser *hp = &P->p;
  lua_pushinteger(L, hp->status_code);
  lua_pushlstring(L, P->status.p, P->status.n);
  lua_pushinteger(L, hp->http_minor);
  push_fields(L, P);
  return 5;
}

/* The values of the fields named `lname` joined with ", " (as Headers
** joins them), lowercase if asked; nil when there are none. */
static void push_joined(lua_State *L, Parser *P, const char *lname, size_t ln, int lower) {
  size_t nf = P->nf / 2, found = 0;
  luaL_Buffer b;
  for (size_t i = 0; i < nf; i++) {
    span k = P->f[2 * i];
    if (k.n != ln || !corio__http_ieq(k.p, lname, ln)) continue;
    if (found++ == 0) luaL_buffinit(L, &b);
    else luaL_addlstring(&b, ", ", 2);
    span v = trim_value(P->f[2 * i + 1]);
    char *d = luaL_prepbuffsize(&b, v.n);
    for (size_t j = 0; j < v.n; j++) {
      unsigned char c = (unsigned char)v.p[j];
      d[j] = (char)(lower && c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    luaL_addsize(&b, v.n);
  }
  if (found) luaL_pushresult(&b);
  else lua_pushnil(L);
}

/* What the client decides a response by, from one look at its fields:
** pushes length (the Content-Length when there is exactly one, of 1 to 15
** plain digits, and no Transfer-Encoding: the common case; else nil, and
** the strict rules of _http_msg.framing decide), te (a Transfer-Encoding
** is there), and Connection (lowercase), Content-Encoding and Location
** joined, or nil. */
static void push_summary(lua_State *L, Parser *P) {
  size_t nf = P->nf / 2;
  int ncl = 0, te = 0;
  span cl = { NULL, 0 };
  for (size_t i = 0; i < nf; i++) {
    span k = P->f[2 * i];
    if (ieq(k.p, k.n, "content-length")) { ncl++; cl = trim_value(P->f[2 * i + 1]); }
    else if (ieq(k.p, k.n, "transfer-encoding")) te = 1;
  }
  lua_Integer len = -1;
  if (ncl == 1 && !te && cl.n >= 1 && cl.n <= 15) {
    len = 0;
    for (size_t j = 0; j < cl.n && len >= 0; j++)
      len = cl.p[j] >= '0' && cl.p[j] <= '9' ? len * 10 + (cl.p[j] - '0') : -1;
  }
  if (len >= 0) lua_pushinteger(L, len);
  else lua_pushnil(L);
  lua_pushboolean(L, te);
  push_joined(L, P, "connection", 10, 1);
  push_joined(L, P, "content-encoding", 16, 0);
  push_joined(L, P, "location", 8, 0);
}

/* Parser:response(block, max_headers, no_body) */
static int l_response(lua_State *L) {
  Parser *P = check_parser(L);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  return response_of(L, P, s, n, luaL_optinteger(L, 3, 100), lua_toboolean(L, 4));
}

/* The end of a head in s[0, n) searched from `from`: the byte after the
** first blank line, whatever its line ends (a bare LF is the guard's to
** refuse, with a protocol error, not a reason to wait for more), or 0. */
static size_t lax_head_end(const char *s, size_t n, size_t from) {
  const char *p = s + from, *end = s + n;
  while (p < end) {
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    if (!lf) return 0;
    if (lf + 1 < end && lf[1] == '\n') return (size_t)(lf + 2 - s);
    if (lf + 2 < end && lf[1] == '\r' && lf[2] == '\n') return (size_t)(lf + 3 - s);
    p = lf + 1;
  }
  return 0;
}

/* Parser:response_at(buf, pos, max_size, max_headers, no_body [, scanned])
**   -> next, status, reason, minor, names, values, length, te,
**      connection, content_encoding, location: the head at pos of buf
**      parsed where it lies (the client's Reader buffer: no block string
**      cut out of it, no search in Lua); next is the byte after it; the
**      rest is push_summary's
**   -> false[, true]: no whole head yet (true: none can come within
**      max_size bytes); `scanned` bytes after pos were searched before
**   -> nil, status, detail: refused, as response() */
static int l_response_at(lua_State *L) {
  Parser *P = check_parser(L);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  lua_Integer pos = luaL_checkinteger(L, 3);
  lua_Integer max = luaL_checkinteger(L, 4);
  lua_Integer max_headers = luaL_optinteger(L, 5, 100);
  int no_body = lua_toboolean(L, 6);
  lua_Integer scanned = luaL_optinteger(L, 7, 0);
  luaL_argcheck(L, pos >= 1 && (size_t)pos <= n + 1, 3, "out of range");
  size_t avail = n - (size_t)(pos - 1), lim = avail;
  if (max < 0) max = 0;
  if ((lua_Unsigned)max < lim) lim = (size_t)max;
  /* the last 2 bytes searched may start a blank line the next read ends */
  size_t from = scanned > 2 ? (size_t)scanned - 2 : 0;
  if (from > lim) from = lim;
  size_t e = lax_head_end(s + pos - 1, lim, from);
  if (e == 0) {
    lua_pushboolean(L, 0);
    if (avail < (size_t)max) return 1;
    lua_pushboolean(L, 1);
    return 2;
  }
  int nret = response_of(L, P, s + pos - 1, e, max_headers, no_body);
  if (nret != 5) return nret;
  lua_pushinteger(L, pos + (lua_Integer)e);
  lua_rotate(L, -6, 1);
  luaL_checkstack(L, 8, "response_at");
  push_summary(L, P);
  return 11;
}

static int hexval(unsigned char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The chunk framing guard: walks the bytes the parser is about to get and
** returns how many belong to this body (it stops after the final CRLF),
** or -1 with *why set.  The lax parser takes "5\rX" as a size line, lets
** extensions hold any byte, skips the two bytes after chunk data without
** looking at them, and takes bare LFs in trailers.  Trailer lines are
** checked as strictly as header fields (a token, a colon, a value without
** control bytes), so that every malformed body is refused here, before the
** parser sees it, and the verdict does not depend on how the bytes were
** split across reads.  For the same reason it refuses everything the
** parser would refuse in what it accepts: a tab after the chunk size (the
** parser takes a space only), a trailer section past the parser's header
** size limit.  *status is 400, 431 for a size limit of the trailers, or
** 413 for the chunk extensions of the body past MAX_EXT_BYTES. */
static long chunk_guard(Parser *P, const unsigned char *s, size_t n, const char **why,
                        int *status) {
  size_t i = 0;
  *status = 400;
  for (; i < n && P->cg != CG_DONE; i++) {
    unsigned char c = s[i];
    if (P->cg != CG_DATA && ++P->linelen > MAX_CHUNK_LINE) { *why = "chunk line too long"; return -1; }
    if (P->cg >= CG_TRL0 && ++P->trlbytes > MAX_TRAILER_BYTES) {
      *why = "trailer section too large";
      *status = 431;
      return -1;
    }
    switch (P->cg) {
    case CG_SIZE0:
    case CG_SIZE: {
      int d = hexval(c);
      if (d >= 0) {
        /* at most 15 digits: an overflowing size wraps to a small one in
           some parsers */
        if (++P->digits > 15) { *why = "chunk size too large"; return -1; }
        P->left = P->left * 16 + (uint64_t)d;
        P->cg = CG_SIZE;
        break;
      }
      if (P->cg == CG_SIZE0) { *why = "bad chunk size"; return -1; }
    } /* fall through */
    case CG_OWS:
      if (c == ' ') P->cg = CG_OWS;
      else if (c == ';') P->cg = CG_EXT;
      else if (c == '\r') P->cg = CG_SIZE_LF;
      else { *why = "bad chunk size line"; return -1; }
      break;
    case CG_EXT:
      if (c == '\r') P->cg = CG_SIZE_LF;
      else if (is_ctl(c)) { *why = "control byte in a chunk extension"; return -1; }
      else if (++P->extbytes > MAX_EXT_BYTES) {
        *why = "chunk extensions too large";
        *status = 413;
        return -1;
      }
      break;
    case CG_SIZE_LF:
      if (c != '\n') { *why = "chunk size line without CRLF"; return -1; }
      P->linelen = 0;
      P->digits = 0;
      P->cg = P->left ? CG_DATA : CG_TRL0;
      break;
    case CG_DATA: {
      size_t take = n - i;
      if (take > P->left) take = (size_t)P->left;
      P->left -= take;
      i += take - 1;
      if (!P->left) P->cg = CG_DATA_CR;
      break;
    }
    case CG_DATA_CR:
      if (c != '\r') { *why = "chunk data longer than its size"; return -1; }
      P->cg = CG_DATA_LF;
      break;
    case CG_DATA_LF:
      if (c != '\n') { *why = "chunk data not followed by CRLF"; return -1; }
      P->cg = CG_SIZE0;
      P->linelen = 0;
      break;
    case CG_TRL0:
      if (c == '\r') { P->cg = CG_END_LF; break; }
      if (++P->trailers > MAX_TRAILERS) {
        *why = "too many trailer fields";
        *status = 431;
        return -1;
      }
      if (!tchar[c]) { *why = "bad trailer field"; return -1; }
      P->cg = CG_TRLNAME;
      break;
    case CG_TRLNAME:       /* a trailer is "name: value", as a header is */
      if (c == ':') P->cg = CG_TRL;
      else if (!tchar[c]) { *why = "bad trailer field"; return -1; }
      break;
    case CG_TRL:
      if (c == '\r') P->cg = CG_TRL_LF;
      else if (is_ctl(c)) { *why = "control byte in a trailer"; return -1; }
      break;
    case CG_TRL_LF:
      if (c != '\n') { *why = "bare CR in a trailer"; return -1; }
      P->linelen = 0;
      P->cg = CG_TRL0;
      break;
    case CG_END_LF:
      if (c != '\n') { *why = "bare CR after the last chunk"; return -1; }
      P->cg = CG_DONE;
      break;
    }
  }
  return (long)i;
}

/* Parser:chunk(buf, pos) -> data, newpos, done: decodes the chunked body
** bytes of buf from pos on; stops after the body's end. */
static int l_chunk(lua_State *L) {
  Parser *P = check_parser(L);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  lua_Integer pos = luaL_checkinteger(L, 3);
  luaL_argcheck(L, pos >= 1 && (size_t)pos <= n + 1, 3, "out of range");
  if (!P->chunked || !P->headers_done)
    return luaL_error(L, "the parser is not in a chunked body");
  if (P->complete) {
    lua_pushliteral(L, "");
    lua_pushinteger(L, pos);
    lua_pushboolean(L, 1);
    return 3;
  }
  /* A body that failed stays failed: the parser keeps its error, and a
     guard that saw the end while the parser did not would otherwise
     answer "nothing new" for ever to a reader that loops until the end. */
  if (HTTP_PARSER_ERRNO(&P->p) != HPE_OK && HTTP_PARSER_ERRNO(&P->p) != HPE_PAUSED)
    return fail(L, 400, http_errno_description(HTTP_PARSER_ERRNO(&P->p)));
  if (P->cg == CG_DONE) return fail(L, 400, "chunk framing disagreement");
  const char *p = s + pos - 1;
  size_t avail = n - (size_t)(pos - 1);
  const char *why = NULL;
  int status;
  long g = chunk_guard(P, (const unsigned char *)p, avail, &why, &status);
  if (g < 0) return fail(L, status, why);
  if (g == 0) {            /* nothing new (a length of 0 means EOF to the parser) */
    lua_pushliteral(L, "");
    lua_pushinteger(L, pos);
    lua_pushboolean(L, 0);
    return 3;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  P->out = &b;
  size_t used = http_parser_execute(&P->p, &settings, p, (size_t)g);
  P->out = NULL;
  enum http_errno e = HTTP_PARSER_ERRNO(&P->p);
  if (e == HPE_PAUSED) e = HPE_OK;
  /* both must agree on where the body ends */
  if (e == HPE_OK && (used != (size_t)g || P->complete != (P->cg == CG_DONE)))
    return fail(L, 400, "chunk framing disagreement");
  if (e != HPE_OK) {
    luaL_pushresult(&b);
    return fail(L, 400, http_errno_description(e));
  }
  luaL_pushresult(&b);
  lua_pushinteger(L, pos + g);
  lua_pushboolean(L, P->complete);
  return 3;
}

static int l_parser(lua_State *L) {
  static const char *const kinds[] = { "request", "response", NULL };
  int kind = luaL_checkoption(L, 1, NULL, kinds);
  new_parser(L, kind == 0 ? HTTP_REQUEST : HTTP_RESPONSE);
  return 1;
}

int luaopen_corio__http(lua_State *L) {
  static const luaL_Reg fns[] = {
    { "parser", l_parser },
    { "inflater", corio__http_inflater },
    { "fields", l_fields },
    { "line", l_line },
    { "respond", corio__http_respond },
    { "armed", corio__http_armed },
    { NULL, NULL }
  };
  static const luaL_Reg meths[] = {
    { "request", l_request },
    { "response", l_response },
    { "response_at", l_response_at },
    { "next", l_next },
    { "limits", l_limits },
    { "chunk", l_chunk },
    { "__gc", parser_gc },
    { NULL, NULL }
  };
  /* The parser's header-size limit is one process-wide setting; each
     server keeps its own (max_header_size, checked before the parser). */
  http_parser_set_max_header_size(UINT32_MAX);
  if (luaL_newmetatable(L, PARSER_MT)) {
    lua_pushvalue(L, -1);
    luaL_setfuncs(L, meths, 1);
    corio__http_deadline_methods(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
  }
  /* take and reply, with their upvalues: the metatable, the method
     names, the interned keys (http.h) */
  luaL_newlib(L, fns);
  static const char *const keys[] = {
#define HTTP_KEY_NAME(k) #k,
    HTTP_KEYS(HTTP_KEY_NAME)
#undef HTTP_KEY_NAME
  };
  static const struct { const char *name; lua_CFunction f; int in_mt; } ups[] = {
    { "take", l_take, 1 }, { "reply", corio__http_reply, 0 },
    { "serve", corio__http_serve, 0 }
  };
  for (int u = 0; u < 3; u++) {
    lua_pushvalue(L, -2);                   /* upvalue 1: the metatable */
    lua_newtable(L);                        /* upvalue 2: method names */
    for (int m = 0; m < 64; m++) {
      const char *name = http_method_str((enum http_method)m);
      if (name[0] == '<') break;            /* "<unknown>" past the last */
      lua_pushstring(L, name);
      lua_rawseti(L, -2, m + 1);
    }
    for (int k = 0; k < HK_COUNT; k++) lua_pushstring(L, keys[k]);
    lua_pushcclosure(L, ups[u].f, HTTP_UP_KEYS - 1 + HK_COUNT);
    lua_setfield(L, ups[u].in_mt ? -3 : -2, ups[u].name);
  }
  lua_remove(L, -2);
  return 1;
}
