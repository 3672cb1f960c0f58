/* What the bidder's C files share: the keyed HMAC type, the signed notice query (both ``_native.c``),
 * the writing helpers, and the types each file defines for the module. */
#ifndef BIDDER_NATIVE_H
#define BIDDER_NATIVE_H

#define PY_SSIZE_T_CLEAN
#define OPENSSL_SUPPRESS_DEPRECATED
#include <Python.h>
#include <string.h>
#include <openssl/sha.h>

#define SIG_CHARS 22  /* 16 bytes (128 bits of the MAC) in base64url, without padding */

typedef struct {
    PyObject_HEAD
    SHA256_CTX inner;  /* SHA-256 state after the key XOR ipad block */
    SHA256_CTX outer;  /* ... and after the key XOR opad block */
    int keyed;         /* 0 until __init__ ran: never sign with a zero state */
} Hmac;

extern PyTypeObject HmacType;
extern PyTypeObject WriterType;       /* _writer.c */
extern PyTypeObject RequestMaskType;  /* _targeting.c */
/* Interns the attribute names ``RequestMask`` reads: 0, or -1 with an exception set. */
int targeting_ready(void);

/* The first 16 bytes of HMAC-SHA256(key, msg) in base64url, into out[SIG_CHARS]. */
void hmac_sign(const Hmac *self, const char *msg, size_t len, char *out);
/* 1 when keyed, else 0 with ValueError set. */
int hmac_keyed(const Hmac *self);

typedef struct {
    const char *s;
    size_t n;
} Text;

/* The fields of one bid's signed notice query, in ``Hmac.query``'s argument order. A NULL
 * ``Q_IMP_QUOTED`` has ``signed_query`` percent-encode ``Q_IMP`` itself. */
enum { Q_BID, Q_IMP, Q_IMP_QUOTED, Q_SIGNED_IDS, Q_QUOTED_IDS, Q_PRICE, Q_CUR, Q_EXPIRY, Q_TEST, Q_N };
/* The bytes ``signed_query`` may use of its buffer. */
size_t signed_query_size(const Text t[Q_N]);
/* Signs the fields and writes their query string at ``buf``; returns its end. */
char *signed_query(const Hmac *self, char *buf, const Text t[Q_N]);
/* As urllib.parse.quote(s, safe=""): at most 3n bytes. */
char *put_quoted(char *p, const char *s, size_t n);

static inline char *
put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

#endif
