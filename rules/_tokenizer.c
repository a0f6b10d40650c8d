/*
 * The fast parser's tokenizer (rules/_fast_parser.py, `_TOKEN`) in C, for ASCII text.
 *
 * It cuts text[start:end] exactly as `_TOKEN.finditer(text, start, end)` does:
 * blanks (space, tab, form feed, CR, LF) are skipped, then the first of the
 * regex's alternatives that matches, in the regex's order, gives the token.  A
 * token's kind is the number of that alternative's group in `_TOKEN`, so the
 * caller maps kinds to names with the same table as for the regex.
 * `tests/rules/test_native_tokens.py` compares the two on every token shape.
 *
 * `shrike_tokenize` returns the number of tokens, or -1 when there are more than
 * `capacity`.  `shrike_join_tokens` copies the tokens' texts, each followed by a NUL,
 * so one split makes all their strings; `shrike_line_starts` gives the offset of
 * every line's first character.
 */
#include <stdint.h>

enum {
    K_WORD = 1, K_STRING, K_PUNCT, K_IPV6, K_IPV4, K_DURATION, K_HEX, K_FLOAT, K_INT,
    K_VARIABLE, K_HEXBYTES, K_REGEX, K_DOTS, K_NOT_EQUAL_RANGE, K_OPERATOR, K_SEPARATOR,
    K_COMMENT, K_OTHER
};

static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_alpha(int c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
static int is_word_start(int c) { return is_alpha(c) || c == '_'; }
static int is_word(int c) { return is_word_start(c) || is_digit(c); }
static int is_hex(int c) { return is_digit(c) || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); }
static int is_blank(int c) { return c == ' ' || c == '\t' || c == '\f' || c == '\r' || c == '\n'; }

/* Each matcher returns the end of its token starting at p, or -1. */

static long word(const char *t, long p, long end) {
    if (p >= end || !is_word_start(t[p])) return -1;
    p++;
    while (p < end && (is_word(t[p]) || t[p] == '.' || t[p] == '-')) p++;
    return p;
}

/* `"(?:[^"\\\n]|\\.)*"` and, with at_least_one, `/(?:[^/\\\n]|\\.)+/` */
static long quoted(const char *t, long p, long end, char quote, int at_least_one) {
    if (p >= end || t[p] != quote) return -1;
    long q = p + 1;
    while (q < end) {
        char c = t[q];
        if (c == quote) {
            if (at_least_one && q == p + 1) return -1;
            return q + 1;
        }
        if (c == '\n') return -1;
        if (c == '\\') {
            if (q + 1 >= end || t[q + 1] == '\n') return -1;
            q += 2;
        } else {
            q++;
        }
    }
    return -1;
}

static long digits(const char *t, long p, long end, long most) {
    long q = p;
    while (q < end && q - p < most && is_digit(t[q])) q++;
    return q;
}

static long ipv6(const char *t, long p, long end) {
    long q = p;
    while (q < end && is_hex(t[q])) q++;
    if (q >= end || t[q] != ':') return -1;
    q++;
    while (q < end && is_hex(t[q])) q++;
    if (q >= end || t[q] != ':') return -1;
    q++;
    while (q < end && (is_hex(t[q]) || t[q] == ':' || t[q] == '.')) q++;
    if (q + 1 < end && t[q] == '/' && is_digit(t[q + 1])) q = digits(t, q + 1, end, 3);
    return q;
}

static long ipv4(const char *t, long p, long end) {
    long q = p;
    for (int octet = 0; octet < 4; octet++) {
        long after = digits(t, q, end, 3);
        if (after == q) return -1;
        q = after;
        if (octet < 3) {
            if (q >= end || t[q] != '.') return -1;
            q++;
        }
    }
    if (q + 1 < end && t[q] == '/' && is_digit(t[q + 1])) q = digits(t, q + 1, end, 2);
    return q;
}

static long duration(const char *t, long p, long end) {
    long q = digits(t, p, end, end);
    if (q == p) return -1;
    static const char *const units[] = {"ms", "s", "m", "h", "d"};
    for (int u = 0; u < 5; u++) {
        long r = q;
        const char *unit = units[u];
        while (*unit && r < end && t[r] == *unit) { r++; unit++; }
        if (*unit) continue;
        if (r < end && (is_word(t[r]) || t[r] == '.')) continue;
        return r;
    }
    return -1;
}

static long hexint(const char *t, long p, long end) {
    if (p + 2 >= end || t[p] != '0' || (t[p + 1] != 'x' && t[p + 1] != 'X') || !is_hex(t[p + 2]))
        return -1;
    long q = p + 2;
    while (q < end && is_hex(t[q])) q++;
    return q;
}

static long number(const char *t, long p, long end, int fraction) {
    long q = p;
    if (q < end && t[q] == '-') q++;
    long after = digits(t, q, end, end);
    if (after == q) return -1;
    q = after;
    if (!fraction) return q;
    if (q >= end || t[q] != '.') return -1;
    after = digits(t, q + 1, end, end);
    return after == q + 1 ? -1 : after;
}

static long variable(const char *t, long p, long end) {
    if (p + 1 >= end || t[p] != '$' || !is_word_start(t[p + 1])) return -1;
    long q = p + 2;
    while (q < end && is_word(t[q])) q++;
    return q;
}

static long hexbytes(const char *t, long p, long end) {
    if (p >= end || t[p] != '|') return -1;
    long q = p + 1;
    while (q < end && (is_hex(t[q]) || t[q] == ' ' || t[q] == '\t')) q++;
    return (q < end && t[q] == '|') ? q + 1 : -1;
}

static long regex(const char *t, long p, long end) {
    long q = quoted(t, p, end, '/', 1);
    if (q < 0) return -1;
    while (q < end && is_alpha(t[q])) q++;
    return q;
}

static long operator_at(const char *t, long p, long end) {
    static const char *const ops[] = {
        "<<", ">>", "<=", ">=", "==", "!=", "=", "<", ">", "&", "^", "+", "-", "*", "/"};
    for (int i = 0; i < 15; i++) {
        const char *op = ops[i];
        long q = p;
        while (*op && q < end && t[q] == *op) { q++; op++; }
        if (!*op) return q;
    }
    return -1;
}

static long operator(const char *t, long p, long end) {
    if (p < end && t[p] == '!') {
        long q = operator_at(t, p + 1, end);
        if (q >= 0) return q;
    }
    return operator_at(t, p, end);
}

static long pair(const char *t, long p, long end, char a, char b) {
    return (p + 1 < end && t[p] == a && t[p + 1] == b) ? p + 2 : -1;
}

long shrike_tokenize(const char *text, long start, long end, uint8_t *kinds, int32_t *starts,
                     int32_t *lengths, long capacity) {
    long count = 0;
    long p = start;
    for (;;) {
        while (p < end && is_blank(text[p])) p++;
        if (p >= end) return count;
        if (count == capacity) return -1;
        char c = text[p];
        long q;
        int kind;
        if ((q = word(text, p, end)) >= 0) kind = K_WORD;
        else if ((q = quoted(text, p, end, '"', 0)) >= 0) kind = K_STRING;
        else if (c == '{' || c == '}' || c == '[' || c == ']' || c == '(' || c == ')' || c == ',') {
            q = p + 1;
            kind = K_PUNCT;
        }
        else if ((q = ipv6(text, p, end)) >= 0) kind = K_IPV6;
        else if ((q = ipv4(text, p, end)) >= 0) kind = K_IPV4;
        else if ((q = duration(text, p, end)) >= 0) kind = K_DURATION;
        else if ((q = hexint(text, p, end)) >= 0) kind = K_HEX;
        else if ((q = number(text, p, end, 1)) >= 0) kind = K_FLOAT;
        else if ((q = number(text, p, end, 0)) >= 0) kind = K_INT;
        else if ((q = variable(text, p, end)) >= 0) kind = K_VARIABLE;
        else if ((q = hexbytes(text, p, end)) >= 0) kind = K_HEXBYTES;
        else if ((q = regex(text, p, end)) >= 0) kind = K_REGEX;
        else if ((q = pair(text, p, end, '.', '.')) >= 0) kind = K_DOTS;
        else if ((q = pair(text, p, end, '<', '>')) >= 0) kind = K_NOT_EQUAL_RANGE;
        else if ((q = operator(text, p, end)) >= 0) kind = K_OPERATOR;
        else if (c == ':' || c == '!' || c == '|') {
            q = p + 1;
            kind = K_SEPARATOR;
        }
        else if (c == '#') {
            q = p + 1;
            while (q < end && text[q] != '\n') q++;
            kind = K_COMMENT;
        }
        else {
            q = p + 1;
            kind = K_OTHER;
        }
        kinds[count] = (uint8_t)kind;
        starts[count] = (int32_t)p;
        lengths[count] = (int32_t)(q - p);
        count++;
        p = q;
    }
}

long shrike_join_tokens(const char *text, const int32_t *starts, const int32_t *lengths,
                        long count, char *out) {
    long size = 0;
    for (long i = 0; i < count; i++) {
        for (int32_t j = 0; j < lengths[i]; j++) out[size++] = text[starts[i] + j];
        out[size++] = '\0';
    }
    return size;
}

/* Fills starts[0..] with 0 and the offset after each LF; returns how many. */
long shrike_line_starts(const char *text, long length, int64_t *starts) {
    long count = 0;
    starts[count++] = 0;
    for (long p = 0; p < length; p++)
        if (text[p] == '\n') starts[count++] = p + 1;
    return count;
}
