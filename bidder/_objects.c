/* What the C files share about Python objects: interned attribute names, a cached attribute read for
 * the msgspec Structs of a decoded request, ``str`` case, and ints as 64-bit words. */
#include "_native.h"
#include <structmember.h>

const char *const attr_names[ATTR_N] = {
    "device", "user", "geo", "country", "region", "utcoffset", "devicetype", "os", "site", "app", "bundle",
    "domain", "publisher", "cat", "sectioncat", "pagecat", "id", "bcat", "badv", "bapp", "wseat", "bseat",
    "regs", "ext", "buyeruid", "eids", "may_use_personal_data", "upper", "lower", "inventory", "categories",
    "banner", "format", "w", "h", "video", "audio", "native", "mimes", "minduration", "maxduration", "battr",
    "request", "pmp", "deals", "private_auction", "bidfloor", "bidfloorcur", "at", "wadomain",
    "index", "breaker", "allow", "record_success", "record_failure", "_best", "_out", "_shade", "_mono", "stats",
    "decisions", "_scored", "_fallback", "rates", "device_type",
    "wall", "_request_mask", "live", "settings", "bid_ttl", "imp", "test", "_imp_step", "_line_campaign", "_ids",
    "line", "bid", "value", "source", "ctx", "deal", "budget", "admit", "_campaign_stats", "no_bid",
    "campaign_lines", "fallback", "observe", "_bid_prefix", "_writer", "scorer", "explain", "bids",
    "response",
};
PyObject *interned[ATTR_N];
PyObject *empty, *zero;

int
objects_ready(void)
{
    for (int i = 0; i < ATTR_N; i++)
        if (interned[i] == NULL && (interned[i] = PyUnicode_InternFromString(attr_names[i])) == NULL)
            return -1;
    if (empty == NULL && (empty = PyUnicode_New(0, 0)) == NULL)
        return -1;
    if (zero == NULL && (zero = PyLong_FromLong(0)) == NULL)
        return -1;
    return 0;
}

/* ``o.<name>``. A decoded request's attributes are member slots of msgspec Structs: once an attribute
 * has been read from a type the generic way, its slot's offset is kept (a few types per name, checked by
 * the type's version tag as CPython's own attribute caches do) and read directly after. */
#define WAYS 4
static struct {
    PyTypeObject *type;
    unsigned int tag;
    Py_ssize_t offset;
} slots[ATTR_N][WAYS];

/* Keeps where ``tp`` holds ``name``: its member slot's offset, or -1 for anything else (a property, a
 * type with its own getattr), which ``attr`` then reads the generic way without asking again. */
static void
learn(PyTypeObject *tp, int name)
{
    if (!(tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG))
        return;
    Py_ssize_t offset = -1;
    if (tp->tp_getattro == PyObject_GenericGetAttr) {
        PyObject *d = PyObject_GetAttr((PyObject *)tp, interned[name]);  /* a member descriptor gives itself */
        if (d == NULL)
            PyErr_Clear();
        else if (Py_IS_TYPE(d, &PyMemberDescr_Type) &&
                 (((PyMemberDescrObject *)d)->d_member->type == T_OBJECT_EX ||
                  ((PyMemberDescrObject *)d)->d_member->type == T_OBJECT))
            offset = ((PyMemberDescrObject *)d)->d_member->offset;
        Py_XDECREF(d);
    }
    int way = 0;
    while (way < WAYS - 1 && slots[name][way].type != NULL && slots[name][way].type != tp)
        way++;
    slots[name][way].type = tp;
    slots[name][way].tag = tp->tp_version_tag;
    slots[name][way].offset = offset;
}

/* Where ``o`` holds ``name`` when ``attr`` has learned it is a member slot of ``o``'s type, else NULL;
 * ``*known``: whether ``attr`` has asked about the type already. */
static inline __attribute__((always_inline)) PyObject **
slot(PyObject *o, int name, int *known)
{
    PyTypeObject *tp = Py_TYPE(o);
    *known = 0;
    for (int way = 0; way < WAYS; way++) {
        if (slots[name][way].type == tp) {
            if (slots[name][way].tag == tp->tp_version_tag && (tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG)) {
                *known = 1;
                Py_ssize_t offset = slots[name][way].offset;
                return offset < 0 ? NULL : (PyObject **)((char *)o + offset);
            }
            break;
        }
    }
    return NULL;
}

PyObject *
attr(PyObject *o, int name)
{
    int known;
    PyObject **p = slot(o, name, &known);
    if (p != NULL && *p != NULL)
        return Py_NewRef(*p);
    PyObject *v = PyObject_GetAttr(o, interned[name]);
    if (v != NULL && !known)
        learn(Py_TYPE(o), name);
    return v;
}

int
bump(PyObject *counter, PyObject *key)
{
    PyObject *n, *more = NULL, *one = PyLong_FromLong(1);
    int ok = -1;
    /* A Counter is a dict that keeps dict's item assignment: set it as dict does, not through the type's
     * slot, which looks ``__setitem__`` up and calls it as a method. A missing key asks the mapping
     * (a Counter's ``__missing__`` gives 0). */
    if (PyDict_Check(counter) && (n = PyDict_GetItemWithError(counter, key)) != NULL) {
        if ((more = PyNumber_Add(n, one)) != NULL)
            ok = PyDict_SetItem(counter, key, more);
    } else if (!PyErr_Occurred() && (n = PyObject_GetItem(counter, key)) != NULL) {
        if ((more = PyNumber_Add(n, one)) != NULL)
            ok = PyObject_SetItem(counter, key, more);
        Py_DECREF(n);
    }
    Py_XDECREF(more);
    Py_DECREF(one);
    return ok;
}

int
add_one(PyObject *o, int name)
{
    PyObject *n = attr(o, name), *one = PyLong_FromLong(1), *more = n == NULL ? NULL : PyNumber_Add(n, one);
    int ok = -1, known;
    if (more != NULL) {
        /* A member slot of a type with the generic setattr is set as that setattr would set it. */
        PyObject **p = Py_TYPE(o)->tp_setattro == PyObject_GenericSetAttr ? slot(o, name, &known) : NULL;
        if (p != NULL) {
            Py_XSETREF(*p, more);
            more = NULL;
            ok = 0;
        } else {
            ok = PyObject_SetAttr(o, interned[name], more);
        }
    }
    Py_XDECREF(n);
    Py_DECREF(one);
    Py_XDECREF(more);
    return ok;
}

/* The int whose little-endian bits are the words. */
PyObject *
int_of(const uint64_t *w, Py_ssize_t nw)
{
#if PY_VERSION_HEX < 0x030C0000 && PYLONG_BITS_IN_DIGIT == 30
    /* Straight into CPython's 30-bit digits: ``_PyLong_FromByteArray`` goes a byte at a time. */
    while (nw > 0 && w[nw - 1] == 0)
        nw--;
    if (nw == 0)
        return PyLong_FromLong(0);
    Py_ssize_t bits = 64 * (nw - 1) + (64 - __builtin_clzll(w[nw - 1]));
    Py_ssize_t nd = (bits + PyLong_SHIFT - 1) / PyLong_SHIFT;
    PyLongObject *v = _PyLong_New(nd);
    if (v == NULL)
        return NULL;
    for (Py_ssize_t k = 0; k < nd; k++) {
        Py_ssize_t bit = k * PyLong_SHIFT, i = bit >> 6;
        int o = bit & 63;
        uint64_t d = w[i] >> o;
        if (o > 64 - PyLong_SHIFT && i + 1 < nw)
            d |= w[i + 1] << (64 - o);
        v->ob_digit[k] = (digit)(d & PyLong_MASK);
    }
    return (PyObject *)v;
#else
    return _PyLong_FromByteArray((const unsigned char *)w, nw * 8, 1, 0);
#endif
}

/* ``s.upper()`` (``upper``) or ``s.lower()``: done here for ASCII text, with no new string when it is
 * already in that case; anything else through the method itself. */
PyObject *
recase(PyObject *s, int upper)
{
    if (!PyUnicode_CheckExact(s) || !PyUnicode_IS_ASCII(s))
        return PyObject_CallMethodNoArgs(s, interned[upper ? A_UPPER : A_LOWER]);
    Py_ssize_t n = PyUnicode_GET_LENGTH(s), i = 0;
    const Py_UCS1 *c = PyUnicode_1BYTE_DATA(s);
    const Py_UCS1 lo = upper ? 'a' : 'A', hi = upper ? 'z' : 'Z';
    while (i < n && !(c[i] >= lo && c[i] <= hi))
        i++;
    if (i == n)
        return Py_NewRef(s);
    PyObject *r = PyUnicode_New(n, 127);
    if (r == NULL)
        return NULL;
    Py_UCS1 *d = PyUnicode_1BYTE_DATA(r);
    for (i = 0; i < n; i++)
        d[i] = c[i] >= lo && c[i] <= hi ? c[i] ^ 0x20 : c[i];
    return r;
}

/* The words of a non-negative int below 2 ** (64 * nw), little-endian; -1 with an exception set (an
 * OverflowError past that). */
int
words_of(PyObject *v, uint64_t *w, Py_ssize_t nw)
{
    if (!PyLong_Check(v)) {
        PyErr_Format(PyExc_TypeError, "expected an int bitset, not %.100s", Py_TYPE(v)->tp_name);
        return -1;
    }
#if PY_VERSION_HEX < 0x030C0000 && PYLONG_BITS_IN_DIGIT == 30
    /* Straight from CPython's 30-bit digits, as ``int_of`` writes them. */
    Py_ssize_t nd = Py_SIZE(v);
    const digit *d = ((PyLongObject *)v)->ob_digit;
    if (nd == 0 || (nd > 0 && (nd - 1) * PyLong_SHIFT + (32 - __builtin_clz(d[nd - 1])) <= 64 * nw)) {
        memset(w, 0, nw * sizeof *w);
        for (Py_ssize_t k = 0; k < nd; k++) {
            Py_ssize_t bit = k * PyLong_SHIFT, i = bit >> 6;
            int o = bit & 63;
            w[i] |= (uint64_t)d[k] << o;
            if (o > 64 - PyLong_SHIFT && i + 1 < nw)
                w[i + 1] |= (uint64_t)d[k] >> (64 - o);
        }
        return 0;
    }
#endif
    return AS_BYTES(v, (unsigned char *)w, nw * 8) < 0 ? -1 : 0;
}

uint64_t *
load_rows(const char *owner, PyObject *words, PyObject *nwords, Py_ssize_t *nw, Py_ssize_t *nrows)
{
    Py_ssize_t n = PyLong_Check(nwords) ? PyLong_AsSsize_t(nwords) : -1;
    if (n < 1 || !PyBytes_Check(words) || PyBytes_GET_SIZE(words) % (n * 8) != 0) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "%s: words must be bytes of whole rows of nwords >= 1 words", owner);
        return NULL;
    }
    uint64_t *rows = PyMem_Malloc(PyBytes_GET_SIZE(words) + 1);
    if (rows == NULL)
        return (uint64_t *)PyErr_NoMemory();
    memcpy(rows, PyBytes_AS_STRING(words), PyBytes_GET_SIZE(words));
    *nw = n;
    *nrows = PyBytes_GET_SIZE(words) / (n * 8);
    return rows;
}

Py_ssize_t
checked_row(const char *owner, Py_ssize_t nrows, PyObject *v, const char *what)
{
    Py_ssize_t r = PyLong_Check(v) ? PyLong_AsSsize_t(v) : -1;
    if (r < 0 || r >= nrows) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "%s: %s holds %R, not a row number below %zd", owner, what, v, nrows);
        return -1;
    }
    return r;
}

int
checked_table(const char *owner, Py_ssize_t nrows, PyObject *t, const char *what)
{
    if (!PyDict_Check(t)) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be a dict, not %.100s", owner, what, Py_TYPE(t)->tp_name);
        return -1;
    }
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(t, &pos, &k, &v))
        if (checked_row(owner, nrows, v, what) < 0)
            return -1;
    return 0;
}
