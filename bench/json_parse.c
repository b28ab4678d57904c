/* A strict JSON (RFC 8259) reader for qbench's own result files. */
#include <stdlib.h>
#include <string.h>

#include "bench/qbench.h"

typedef struct parser {
  const char *s, *p;
  char *err;
  size_t err_size;
  int depth;
} parser;

static qb_jvalue *fail(parser *ps, const char *what) {
  if (ps->err && ps->err[0] == '\0') {
    int line = 1, col = 1;
    for (const char *c = ps->s; c < ps->p; ++c) {
      if (*c == '\n') { ++line; col = 1; } else { ++col; }
    }
    snprintf(ps->err, ps->err_size, "line %d, column %d: %s", line, col, what);
  }
  return NULL;
}

static void skip_ws(parser *ps) {
  while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r') ++ps->p;
}

static qb_jvalue *new_value(qb_jtype type) {
  qb_jvalue *v = calloc(1, sizeof *v);
  if (v) v->type = type;
  return v;
}

static void put_utf8(char **out, unsigned cp) {
  char *o = *out;
  if (cp < 0x80) { *o++ = (char)cp; }
  else if (cp < 0x800) { *o++ = (char)(0xC0 | (cp >> 6)); *o++ = (char)(0x80 | (cp & 0x3F)); }
  else if (cp < 0x10000) {
    *o++ = (char)(0xE0 | (cp >> 12)); *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *o++ = (char)(0x80 | (cp & 0x3F));
  } else {
    *o++ = (char)(0xF0 | (cp >> 18)); *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
    *o++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *o++ = (char)(0x80 | (cp & 0x3F));
  }
  *out = o;
}

static bool read_hex4(parser *ps, unsigned *cp) {
  *cp = 0;
  for (int i = 0; i < 4; ++i) {
    const char c = *ps->p++;
    *cp <<= 4;
    if (c >= '0' && c <= '9') *cp |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') *cp |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') *cp |= (unsigned)(c - 'A' + 10);
    else return false;
  }
  return true;
}

/* Decoded output is never longer than the escaped input. */
static char *parse_string(parser *ps) {
  ++ps->p; /* opening quote */
  const char *start = ps->p;
  size_t len = 0;
  while (start[len] && start[len] != '"') len += start[len] == '\\' && start[len + 1] ? 2 : 1;
  char *out = malloc(len + 1), *o = out;
  if (out == NULL) return NULL;
  for (;;) {
    const unsigned char c = (unsigned char)*ps->p;
    if (c == '\0') { free(out); fail(ps, "unterminated string"); return NULL; }
    if (c < 0x20) { free(out); fail(ps, "control character in string"); return NULL; }
    ++ps->p;
    if (c == '"') break;
    if (c != '\\') { *o++ = (char)c; continue; }
    const char e = *ps->p++;
    switch (e) {
      case '"': *o++ = '"'; break;
      case '\\': *o++ = '\\'; break;
      case '/': *o++ = '/'; break;
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case 'n': *o++ = '\n'; break;
      case 'r': *o++ = '\r'; break;
      case 't': *o++ = '\t'; break;
      case 'u': {
        unsigned cp;
        if (!read_hex4(ps, &cp)) { free(out); fail(ps, "bad \\u escape"); return NULL; }
        if (cp >= 0xD800 && cp < 0xDC00 && ps->p[0] == '\\' && ps->p[1] == 'u') {
          unsigned lo;
          ps->p += 2;
          if (!read_hex4(ps, &lo) || lo < 0xDC00 || lo > 0xDFFF) { free(out); fail(ps, "bad surrogate pair"); return NULL; }
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        put_utf8(&o, cp);
        break;
      }
      default: free(out); fail(ps, "bad escape in string"); return NULL;
    }
  }
  *o = '\0';
  return out;
}

static qb_jvalue *parse_value(parser *ps);

static bool append(qb_jvalue *v, char *key, qb_jvalue *item) {
  qb_jvalue **items = realloc(v->items, (v->count + 1) * sizeof *items);
  if (items == NULL) return false;
  v->items = items;
  if (v->type == QB_JOBJECT) {
    char **keys = realloc(v->keys, (v->count + 1) * sizeof *keys);
    if (keys == NULL) return false;
    v->keys = keys;
    v->keys[v->count] = key;
  }
  v->items[v->count++] = item;
  return true;
}

static qb_jvalue *parse_container(parser *ps, bool object) {
  if (++ps->depth > 64) return fail(ps, "nesting deeper than 64");
  qb_jvalue *v = new_value(object ? QB_JOBJECT : QB_JARRAY);
  if (v == NULL) return fail(ps, "out of memory");
  ++ps->p;
  skip_ws(ps);
  const char close = object ? '}' : ']';
  if (*ps->p == close) { ++ps->p; --ps->depth; return v; }
  for (;;) {
    char *key = NULL;
    skip_ws(ps);
    if (object) {
      if (*ps->p != '"') { qb_json_free(v); return fail(ps, "expected a string key"); }
      if ((key = parse_string(ps)) == NULL) { qb_json_free(v); return fail(ps, "bad key"); }
      skip_ws(ps);
      if (*ps->p != ':') { free(key); qb_json_free(v); return fail(ps, "expected ':'"); }
      ++ps->p;
    }
    qb_jvalue *item = parse_value(ps);
    if (item == NULL || !append(v, key, item)) {
      free(key);
      qb_json_free(item);
      qb_json_free(v);
      return fail(ps, "bad value");
    }
    skip_ws(ps);
    if (*ps->p == ',') { ++ps->p; continue; }
    if (*ps->p == close) { ++ps->p; break; }
    qb_json_free(v);
    return fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
  }
  --ps->depth;
  return v;
}

static qb_jvalue *parse_number(parser *ps) {
  const char *start = ps->p;
  if (*ps->p == '-') ++ps->p;
  if (*ps->p == '0') {
    ++ps->p;
  } else if (*ps->p >= '1' && *ps->p <= '9') {
    while (*ps->p >= '0' && *ps->p <= '9') ++ps->p;
  } else {
    return fail(ps, "bad number");
  }
  if (*ps->p == '.') {
    ++ps->p;
    if (!(*ps->p >= '0' && *ps->p <= '9')) return fail(ps, "bad fraction");
    while (*ps->p >= '0' && *ps->p <= '9') ++ps->p;
  }
  if (*ps->p == 'e' || *ps->p == 'E') {
    ++ps->p;
    if (*ps->p == '+' || *ps->p == '-') ++ps->p;
    if (!(*ps->p >= '0' && *ps->p <= '9')) return fail(ps, "bad exponent");
    while (*ps->p >= '0' && *ps->p <= '9') ++ps->p;
  }
  qb_jvalue *v = new_value(QB_JNUMBER);
  if (v == NULL) return fail(ps, "out of memory");
  v->number = strtod(start, NULL);
  return v;
}

static qb_jvalue *parse_literal(parser *ps, const char *word, qb_jtype type, bool value) {
  const size_t n = strlen(word);
  if (strncmp(ps->p, word, n) != 0) return fail(ps, "unexpected character");
  ps->p += n;
  qb_jvalue *v = new_value(type);
  if (v == NULL) return fail(ps, "out of memory");
  v->boolean = value;
  return v;
}

static qb_jvalue *parse_value(parser *ps) {
  skip_ws(ps);
  switch (*ps->p) {
    case '{': return parse_container(ps, true);
    case '[': return parse_container(ps, false);
    case '"': {
      char *s = parse_string(ps);
      if (s == NULL) return fail(ps, "bad string");
      qb_jvalue *v = new_value(QB_JSTRING);
      if (v == NULL) { free(s); return fail(ps, "out of memory"); }
      v->string = s;
      return v;
    }
    case 't': return parse_literal(ps, "true", QB_JBOOL, true);
    case 'f': return parse_literal(ps, "false", QB_JBOOL, false);
    case 'n': return parse_literal(ps, "null", QB_JNULL, false);
    case '\0': return fail(ps, "unexpected end of input");
    default: return parse_number(ps);
  }
}

qb_jvalue *qb_json_parse(const char *text, char *err, size_t err_size) {
  if (err && err_size) err[0] = '\0';
  parser ps = {.s = text, .p = text, .err = err, .err_size = err_size};
  qb_jvalue *v = parse_value(&ps);
  if (v == NULL) return NULL;
  skip_ws(&ps);
  if (*ps.p != '\0') {
    qb_json_free(v);
    return fail(&ps, "trailing characters after the document");
  }
  return v;
}

qb_jvalue *qb_json_parse_file(const char *path, char *err, size_t err_size) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    snprintf(err, err_size, "cannot open '%s'", path);
    return NULL;
  }
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += got;
    if (len + 1 == cap) {
      char *bigger = realloc(buf, cap *= 2);
      if (bigger == NULL) { free(buf); buf = NULL; }
      buf = bigger;
    }
  }
  fclose(f);
  if (buf == NULL) {
    snprintf(err, err_size, "'%s': out of memory", path);
    return NULL;
  }
  buf[len] = '\0';
  if (strlen(buf) != len) {
    free(buf);
    snprintf(err, err_size, "'%s': NUL byte in a JSON file", path);
    return NULL;
  }
  qb_jvalue *v = qb_json_parse(buf, err, err_size);
  free(buf);
  return v;
}

void qb_json_free(qb_jvalue *v) {
  if (v == NULL) return;
  for (size_t i = 0; i < v->count; ++i) {
    qb_json_free(v->items[i]);
    if (v->keys) free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
  free(v->string);
  free(v);
}

const qb_jvalue *qb_json_get(const qb_jvalue *object, const char *key) {
  if (object == NULL || object->type != QB_JOBJECT) return NULL;
  for (size_t i = 0; i < object->count; ++i) {
    if (strcmp(object->keys[i], key) == 0) return object->items[i];
  }
  return NULL;
}
