#include <math.h>

#include "bench/qbench.h"

static void write_escaped(FILE *out, const char *s) {
  fputc('"', out);
  for (; *s; ++s) {
    const unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      fprintf(out, "\\%c", c);
    } else if (c < 0x20) {
      fprintf(out, "\\u%04x", c);
    } else {
      fputc(c, out);
    }
  }
  fputc('"', out);
}

static void prefix(qb_json *j, const char *key) {
  if (j->depth > 0) {
    if (j->need_comma[j->depth]) fputc(',', j->out);
    fputc('\n', j->out);
    for (int i = 0; i < j->depth; ++i) fputs("  ", j->out);
    j->need_comma[j->depth] = true;
  }
  if (key) {
    write_escaped(j->out, key);
    fputs(": ", j->out);
  }
}

static void open_scope(qb_json *j, const char *key, char bracket) {
  prefix(j, key);
  fputc(bracket, j->out);
  j->need_comma[++j->depth] = false;
}

static void close_scope(qb_json *j, char bracket) {
  const bool had_items = j->need_comma[j->depth];
  --j->depth;
  if (had_items) {
    fputc('\n', j->out);
    for (int i = 0; i < j->depth; ++i) fputs("  ", j->out);
  }
  fputc(bracket, j->out);
  if (j->depth == 0) fputc('\n', j->out);
}

void qb_json_begin_object(qb_json *j, const char *key) { open_scope(j, key, '{'); }
void qb_json_end_object(qb_json *j) { close_scope(j, '}'); }
void qb_json_begin_array(qb_json *j, const char *key) { open_scope(j, key, '['); }
void qb_json_end_array(qb_json *j) { close_scope(j, ']'); }

void qb_json_string(qb_json *j, const char *key, const char *value) {
  prefix(j, key);
  write_escaped(j->out, value ? value : "");
}

void qb_json_number(qb_json *j, const char *key, double value) {
  prefix(j, key);
  if (isfinite(value)) {
    fprintf(j->out, "%.9g", value);
  } else {
    fputs("null", j->out); /* JSON has no NaN/Inf */
  }
}

void qb_json_int(qb_json *j, const char *key, long long value) {
  prefix(j, key);
  fprintf(j->out, "%lld", value);
}

void qb_json_bool(qb_json *j, const char *key, bool value) {
  prefix(j, key);
  fputs(value ? "true" : "false", j->out);
}
