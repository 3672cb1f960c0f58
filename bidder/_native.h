/* What the bidder's C files share: the keyed HMAC type, the signed notice query (both ``_native.c``),
 * the writing helpers, the types each file defines for the module, and what they need of Python objects
 * and of bitsets as rows of 64-bit words (``_objects.c``). */
#ifndef BIDDER_NATIVE_H
#define BIDDER_NATIVE_H

#define PY_SSIZE_T_CLEAN
#define OPENSSL_SUPPRESS_DEPRECATED
#include <Python.h>
#include <stdint.h>
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
extern PyTypeObject ImpStepType;      /* _imp.c */
extern PyTypeObject AdmitType;        /* _admit.c */
extern PyTypeObject DecideType;       /* _decide.c */

/* ``Writer.bid`` and ``Writer.response`` (_writer.c), for a caller that knows its writer is a Writer. */
PyObject *writer_bid(PyObject *writer, PyObject *const *args, Py_ssize_t nargs);
PyObject *writer_response(PyObject *writer, PyObject *const *args, Py_ssize_t nargs);

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

/* --- Python objects (_objects.c) ------------------------------------------------------------------- */

#if PY_VERSION_HEX >= 0x030D0000
#define AS_BYTES(v, p, n) _PyLong_AsByteArray((PyLongObject *)(v), (p), (n), 1, 0, 1)
#else
#define AS_BYTES(v, p, n) _PyLong_AsByteArray((PyLongObject *)(v), (p), (n), 1, 0)
#endif

/* The attributes the C files read, by number: ``attr_names[A_X]`` and, interned, ``interned[A_X]``. */
enum {
    A_DEVICE, A_USER, A_GEO, A_COUNTRY, A_REGION, A_UTCOFFSET, A_DEVICETYPE, A_OS, A_SITE, A_APP, A_BUNDLE,
    A_DOMAIN, A_PUBLISHER, A_CAT, A_SECTIONCAT, A_PAGECAT, A_ID, A_BCAT, A_BADV, A_BAPP, A_WSEAT, A_BSEAT,
    A_REGS, A_EXT, A_BUYERUID, A_EIDS, A_MAY_USE, A_UPPER, A_LOWER, A_INVENTORY, A_CATEGORIES,
    A_BANNER, A_FORMAT, A_W, A_H, A_VIDEO, A_AUDIO, A_NATIVE, A_MIMES, A_MINDURATION, A_MAXDURATION, A_BATTR,
    A_REQUEST, A_PMP, A_DEALS, A_PRIVATE_AUCTION, A_BIDFLOOR, A_BIDFLOORCUR, A_AT, A_WADOMAIN,
    A_INDEX, A_BREAKER, A_ALLOW, A_RECORD_SUCCESS, A_RECORD_FAILURE, A_BEST, A_OUT, A_SHADE, A_MONO, A_STATS,
    A_DECISIONS, A_SCORED, A_FALLBACK, A_RATES, A_DEVICE_TYPE,
    A_WALL, A_REQUEST_MASK, A_LIVE, A_SETTINGS, A_BID_TTL, A_IMP, A_TEST, A_IMP_STEP, A_LINE_CAMPAIGN, A_IDS,
    A_LINE, A_BID, A_VALUE, A_SOURCE, A_CTX, A_DEAL, A_BUDGET, A_ADMIT, A_CAMPAIGN_STATS, A_NO_BID,
    A_CAMPAIGN_LINES, A_FALLBACK_PRICER, A_OBSERVE, A_BID_PREFIX, A_WRITER, A_SCORER, A_EXPLAIN, A_BIDS,
    A_RESPONSE, ATTR_N
};
extern const char *const attr_names[ATTR_N];
extern PyObject *interned[ATTR_N];
extern PyObject *empty, *zero;  /* "" and 0 */
/* Interns the names and makes ``empty`` and ``zero``: 0, or -1 with an exception set. */
int objects_ready(void);
/* ``o.<attr_names[name]>``, a new reference; member slots are read directly once their type is known. */
PyObject *attr(PyObject *o, int name);
/* ``counter[key] += 1`` for a ``collections.Counter`` (or any mapping); 0, or -1 with an exception set. */
int bump(PyObject *counter, PyObject *key);
/* ``o.<attr_names[name]> += 1``; 0, or -1 with an exception set. */
int add_one(PyObject *o, int name);
/* ``s.upper()`` (``upper``) or ``s.lower()``, a new reference. */
PyObject *recase(PyObject *s, int upper);
/* The int whose little-endian bits are the ``nw`` words. */
PyObject *int_of(const uint64_t *w, Py_ssize_t nw);
/* The words of a non-negative int below 2 ** (64 * nw); -1 with an exception set. */
int words_of(PyObject *v, uint64_t *w, Py_ssize_t nw);

/* ``o == v`` for an int ``o`` (anything else is not equal). */
static inline int
is_int(PyObject *o, long v)
{
    if (!PyLong_Check(o))
        return 0;
    int overflow;
    long x = PyLong_AsLongAndOverflow(o, &overflow);
    return !overflow && x == v;
}

/* Python's truth of ``o``, for the types a decoded request holds (str, list, None, int, Raw, Structs). */
static inline int
truth(PyObject *o)
{
    if (o == Py_None)
        return 0;
    if (PyUnicode_CheckExact(o))
        return PyUnicode_GET_LENGTH(o) != 0;
    if (PyList_CheckExact(o))
        return PyList_GET_SIZE(o) != 0;
    return PyObject_IsTrue(o);
}


/* The row ``table[key]``: -1 when absent, -2 with an exception set. */
static inline Py_ssize_t
row_of(PyObject *table, PyObject *key)
{
    PyObject *v = PyDict_GetItemWithError(table, key);
    if (v == NULL)
        return PyErr_Occurred() ? -2 : -1;
    return PyLong_AsSsize_t(v);  /* checked at construction: a row number */
}

#define STACK_WORDS 256  /* up to 16,384 lines, a decision's buffers live on the stack */

/* The rows of a ``Tables``: ``words`` (bytes of whole rows of ``nwords`` 64-bit words) copied to memory
 * of ``PyMem_Malloc``; NULL with an exception set, naming ``owner``. */
uint64_t *load_rows(const char *owner, PyObject *words, PyObject *nwords, Py_ssize_t *nw, Py_ssize_t *nrows);
/* A row number below ``nrows`` from ``v``; -1 with an exception set, naming ``owner`` and ``what``. */
Py_ssize_t checked_row(const char *owner, Py_ssize_t nrows, PyObject *v, const char *what);
/* Checks that ``t`` is a dict of row numbers: 0, or -1 with an exception set. */
int checked_table(const char *owner, Py_ssize_t nrows, PyObject *t, const char *what);

static inline void
and_words(uint64_t *m, const uint64_t *r, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        m[i] &= r[i];
}

static inline void
and_not_words(uint64_t *m, const uint64_t *r, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        m[i] &= ~r[i];
}

static inline int
any_words(const uint64_t *m, Py_ssize_t n)
{
    uint64_t any = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        any |= m[i];
    return any != 0;
}

#endif
