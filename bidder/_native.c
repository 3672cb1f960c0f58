/* The notice signature in C: HMAC-SHA256 with OpenSSL's SHA-256, and the signed query string.
 *
 * ``bidder.notices.Signer`` signs every bid's notice URLs. In Python that took about ten C calls (copy the
 * keyed states, encode, update, digest, base64, translate, decode) and two f-strings, 3.3 us a bid;
 * here it is one call, 0.7 us (timeit, same arguments). ``notices.py`` keeps the Python twins
 * (``sig_py``, ``query_py``); the tests compare the two.
 *
 * OpenSSL's low-level SHA256_* functions are deprecated in 3.0 in favour of EVP, whose copy of a keyed
 * state goes through the provider layer (EVP_MD_CTX_copy_ex duplicates the provider's context); a
 * SHA256_CTX is a plain struct we copy on the stack.
 */
#include "_native.h"

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int
Hmac_init(Hmac *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"key", NULL};
    Py_buffer key;
    unsigned char block[SHA256_CBLOCK], pad[SHA256_CBLOCK];
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*:Hmac", kwlist, &key))
        return -1;
    memset(block, 0, sizeof block);
    if (key.len > SHA256_CBLOCK)  /* RFC 2104: a key longer than a block is hashed first */
        SHA256(key.buf, (size_t)key.len, block);
    else
        memcpy(block, key.buf, (size_t)key.len);
    PyBuffer_Release(&key);
    for (int i = 0; i < SHA256_CBLOCK; i++)
        pad[i] = block[i] ^ 0x36;
    SHA256_Init(&self->inner);
    SHA256_Update(&self->inner, pad, sizeof pad);
    for (int i = 0; i < SHA256_CBLOCK; i++)
        pad[i] = block[i] ^ 0x5c;
    SHA256_Init(&self->outer);
    SHA256_Update(&self->outer, pad, sizeof pad);
    self->keyed = 1;
    return 0;
}

void
hmac_sign(const Hmac *self, const char *msg, size_t len, char *out)
{
    SHA256_CTX ctx = self->inner;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256_Update(&ctx, msg, len);
    SHA256_Final(digest, &ctx);
    ctx = self->outer;
    SHA256_Update(&ctx, digest, sizeof digest);
    SHA256_Final(digest, &ctx);
    /* 15 bytes make 20 characters; the 16th byte makes 2 more (its low 4 bits padded with zeros). */
    char *o = out;
    for (int i = 0; i < 15; i += 3) {
        unsigned v = (unsigned)digest[i] << 16 | (unsigned)digest[i + 1] << 8 | digest[i + 2];
        *o++ = B64URL[v >> 18];
        *o++ = B64URL[(v >> 12) & 63];
        *o++ = B64URL[(v >> 6) & 63];
        *o++ = B64URL[v & 63];
    }
    *o++ = B64URL[digest[15] >> 2];
    *o = B64URL[(digest[15] & 3) << 4];
}

int
hmac_keyed(const Hmac *self)
{
    if (!self->keyed)
        PyErr_SetString(PyExc_ValueError, "Hmac: no key (__init__ was not called)");
    return self->keyed;
}

static PyObject *
Hmac_sig(Hmac *self, PyObject *message)
{
    Py_ssize_t len;
    char out[SIG_CHARS];
    if (!hmac_keyed(self))
        return NULL;
    if (!PyUnicode_Check(message)) {
        PyErr_Format(PyExc_TypeError, "Hmac.sig: message must be str, not %.100s", Py_TYPE(message)->tp_name);
        return NULL;
    }
    const char *msg = PyUnicode_AsUTF8AndSize(message, &len);  /* raises for lone surrogates, as encode() */
    if (msg == NULL)
        return NULL;
    hmac_sign(self, msg, (size_t)len, out);
    return PyUnicode_FromStringAndSize(out, SIG_CHARS);
}

static const char UPPER_HEX[] = "0123456789ABCDEF";

char *
put_quoted(char *p, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '.' || c == '_' || c == '~') {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = UPPER_HEX[c >> 4];
            *p++ = UPPER_HEX[c & 15];
        }
    }
    return p;
}

#define QUERY_LITERALS (sizeof "b=&i=&bp=&cu=&x=&t=&s=&p=${AUCTION_PRICE}" - 1)

size_t
signed_query_size(const Text t[Q_N])
{
    size_t size = QUERY_LITERALS + SIG_CHARS;  /* enough for the message and for the query alike */
    for (int i = 0; i < Q_N; i++)
        size += t[i].n;
    return size + (t[Q_IMP_QUOTED].s == NULL ? 3 * t[Q_IMP].n : 0);
}

/* The message signed joins bid, imp, signed ids, price, cur, expiry and test with 0x1f; the query is
 * b={bid}&i={imp quoted}{quoted ids}&bp={price}&cu={cur}&x={expiry}&t={test}&s={sig}&p=${AUCTION_PRICE} */
char *
signed_query(const Hmac *self, char *buf, const Text t[Q_N])
{
    static const int SIGNED[] = {Q_BID, Q_IMP, Q_SIGNED_IDS, Q_PRICE, Q_CUR, Q_EXPIRY, Q_TEST};
    char sig[SIG_CHARS];
    char *p = buf;
    for (size_t k = 0; k < sizeof SIGNED / sizeof SIGNED[0]; k++) {
        if (k)
            p = PUT_LIT(p, "\x1f");
        p = put(p, t[SIGNED[k]].s, t[SIGNED[k]].n);
    }
    hmac_sign(self, buf, (size_t)(p - buf), sig);
    p = PUT_LIT(buf, "b=");
    p = put(p, t[Q_BID].s, t[Q_BID].n);
    p = PUT_LIT(p, "&i=");
    if (t[Q_IMP_QUOTED].s != NULL)
        p = put(p, t[Q_IMP_QUOTED].s, t[Q_IMP_QUOTED].n);
    else
        p = put_quoted(p, t[Q_IMP].s, t[Q_IMP].n);
    p = put(p, t[Q_QUOTED_IDS].s, t[Q_QUOTED_IDS].n);
    p = PUT_LIT(p, "&bp=");
    p = put(p, t[Q_PRICE].s, t[Q_PRICE].n);
    p = PUT_LIT(p, "&cu=");
    p = put(p, t[Q_CUR].s, t[Q_CUR].n);
    p = PUT_LIT(p, "&x=");
    p = put(p, t[Q_EXPIRY].s, t[Q_EXPIRY].n);
    p = PUT_LIT(p, "&t=");
    p = put(p, t[Q_TEST].s, t[Q_TEST].n);
    p = PUT_LIT(p, "&s=");
    p = put(p, sig, SIG_CHARS);
    return PUT_LIT(p, "&p=${AUCTION_PRICE}");
}

/* query(bid_id, imp_id, imp_quoted, signed_line, quoted_line, price, cur, expiry, test): ``signed_query``. */
static PyObject *
Hmac_query(Hmac *self, PyObject *const *args, Py_ssize_t nargs)
{
    Text t[Q_N];
    char stack[512];
    if (nargs != Q_N) {
        PyErr_Format(PyExc_TypeError, "Hmac.query takes %d arguments (%zd given)", Q_N, nargs);
        return NULL;
    }
    if (!hmac_keyed(self))
        return NULL;
    for (int i = 0; i < Q_N; i++) {
        Py_ssize_t n;
        if (!PyUnicode_Check(args[i])) {
            PyErr_Format(PyExc_TypeError, "Hmac.query: argument %d must be str, not %.100s", i + 1,
                         Py_TYPE(args[i])->tp_name);
            return NULL;
        }
        if ((t[i].s = PyUnicode_AsUTF8AndSize(args[i], &n)) == NULL)
            return NULL;
        t[i].n = (size_t)n;
    }
    size_t size = signed_query_size(t);
    char *buf = size <= sizeof stack ? stack : PyMem_Malloc(size);
    if (buf == NULL)
        return PyErr_NoMemory();
    char *end = signed_query(self, buf, t);
    PyObject *result = PyUnicode_DecodeUTF8(buf, end - buf, "strict");
    if (buf != stack)
        PyMem_Free(buf);
    return result;
}

static PyMethodDef Hmac_methods[] = {
    {"sig", (PyCFunction)Hmac_sig, METH_O,
     "sig(message: str) -> str: the first 16 bytes of HMAC-SHA256(key, message as UTF-8), base64url."},
    {"query", (PyCFunction)(void (*)(void))Hmac_query, METH_FASTCALL,
     "query(bid_id, imp_id, imp_quoted, signed_line, quoted_line, price, cur, expiry, test) -> str"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject HmacType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "bidder._native.Hmac",
    .tp_basicsize = sizeof(Hmac),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Hmac(key: bytes): HMAC-SHA256 with the keyed states computed once.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Hmac_init,
    .tp_methods = Hmac_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "bidder._native",
    .m_doc = "C for the bidder's hot path: the notice signature, the bid response, the request-level mask, the "
             "imp step, the budget gate's admission and the decision that joins them.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    if (PyType_Ready(&HmacType) < 0 || PyType_Ready(&WriterType) < 0 || PyType_Ready(&RequestMaskType) < 0 ||
        PyType_Ready(&ImpStepType) < 0 || PyType_Ready(&AdmitType) < 0 || PyType_Ready(&DecideType) < 0 ||
        objects_ready() < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Hmac", (PyObject *)&HmacType) < 0 ||
        PyModule_AddObjectRef(m, "Writer", (PyObject *)&WriterType) < 0 ||
        PyModule_AddObjectRef(m, "RequestMask", (PyObject *)&RequestMaskType) < 0 ||
        PyModule_AddObjectRef(m, "ImpStep", (PyObject *)&ImpStepType) < 0 ||
        PyModule_AddObjectRef(m, "Admit", (PyObject *)&AdmitType) < 0 ||
        PyModule_AddObjectRef(m, "Decide", (PyObject *)&DecideType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
