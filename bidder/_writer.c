/* The bid response in C: one Bid object with its signed notice URLs, and the BidResponse around bids.
 *
 * ``bidder.response.WriterPy`` is its Python twin, with the same methods and output to the byte; the
 * tests compare the two. Everything about a bid that depends only on its line (the markup, adomain, ids,
 * size, the ids as signed and as quoted) is encoded once per campaign load, in Python (``response.parts``);
 * per bid this writes the bid id, the imp id (as JSON and percent-encoded), the price, the signed query
 * its nurl, burl and lurl share, the deal and the model's explanation, in one buffer.
 *
 * Floats are written as ``repr`` writes them (shortest round trip, ``PyOS_double_to_string``); prices and
 * model outputs repeat from bid to bid, so the text of recent ones is kept in a small cache.
 */
#include "_native.h"
#include <math.h>
#include <stdint.h>

typedef struct {
    PyObject_HEAD
    Hmac *hmac;
    PyObject *lines;  /* tuple, per line: (signed ids, quoted ids, static JSON members), all bytes */
    PyObject *seats;  /* tuple, per campaign: its seat as a JSON string, bytes */
    PyObject *win, *bill, *loss;  /* bytes: '"nurl":"<base>/notice/win?' and the burl's and lurl's */
    PyObject *ext_tail;           /* bytes: ',"model":"<version>","source":"' */
} Writer;

/* --- text ----------------------------------------------------------------------------------------- */

#define FLOAT_CHARS 32  /* repr of a double is at most 24 characters ("-2.2250738585072014e-308") */

typedef struct {
    uint64_t bits;
    unsigned char len;  /* 0: empty */
    char text[FLOAT_CHARS - 1];
} Shortest;

static Shortest shortest[256];  /* direct-mapped by the double's bits; the GIL guards it */

/* repr(x) into p; NULL with an exception set when Python cannot format it. */
static char *
put_float(char *p, double x)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    Shortest *c = &shortest[(bits * 0x9E3779B97F4A7C15ULL) >> 56];
    if (c->len == 0 || c->bits != bits) {
        char *s = PyOS_double_to_string(x, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
        if (s == NULL)
            return NULL;
        size_t n = strlen(s);
        if (n > sizeof c->text) {  /* cannot happen for a double; never write past the entry */
            PyMem_Free(s);
            PyErr_Format(PyExc_SystemError, "Writer: the repr of a float took %zu characters", n);
            return NULL;
        }
        memcpy(c->text, s, n);
        c->len = (unsigned char)n;
        c->bits = bits;
        PyMem_Free(s);
    }
    return put(p, c->text, c->len);
}

static const char LOWER_HEX[] = "0123456789abcdef";

/* A JSON string literal, escaped as msgspec escapes it: at most 6n + 2 bytes. */
static char *
put_json(char *p, const char *s, size_t n)
{
    *p++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *p++ = (char)c;
            continue;
        }
        *p++ = '\\';
        switch (c) {
        case '"': *p++ = '"'; break;
        case '\\': *p++ = '\\'; break;
        case '\b': *p++ = 'b'; break;
        case '\f': *p++ = 'f'; break;
        case '\n': *p++ = 'n'; break;
        case '\r': *p++ = 'r'; break;
        case '\t': *p++ = 't'; break;
        default:
            p = PUT_LIT(p, "u00");
            *p++ = LOWER_HEX[c >> 4];
            *p++ = LOWER_HEX[c & 15];
        }
    }
    *p++ = '"';
    return p;
}

#define PUT_BYTES(p, b) put((p), PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b))
#define BYTES_TEXT(b) {PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b)}

/* --- arguments ------------------------------------------------------------------------------------- */

static int
text_arg(PyObject *o, const char *what, const char **s, size_t *n)
{
    Py_ssize_t len;
    if (!PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "Writer.%s must be str, not %.100s", what, Py_TYPE(o)->tp_name);
        return -1;
    }
    if ((*s = PyUnicode_AsUTF8AndSize(o, &len)) == NULL)  /* raises for lone surrogates, as encode() */
        return -1;
    *n = (size_t)len;
    return 0;
}

static int
float_arg(PyObject *o, const char *what, double *x)
{
    if (PyFloat_CheckExact(o)) {
        *x = PyFloat_AS_DOUBLE(o);
        return 0;
    }
    *x = PyFloat_AsDouble(o);  /* as float(o): ints and numpy's floats too */
    if (*x == -1.0 && PyErr_Occurred()) {
        PyErr_Format(PyExc_TypeError, "Writer.%s must be a real number, not %.100s", what, Py_TYPE(o)->tp_name);
        return -1;
    }
    return 0;
}

static int
index_arg(PyObject *o, const char *what, PyObject *seq, Py_ssize_t *i)
{
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "Writer.%s must be int, not %.100s", what, Py_TYPE(o)->tp_name);
        return -1;
    }
    *i = PyLong_AsSsize_t(o);
    if (*i == -1 && PyErr_Occurred())
        return -1;
    if (*i < 0 || *i >= PyTuple_GET_SIZE(seq)) {
        PyErr_Format(PyExc_IndexError, "Writer.%s %zd is out of range (0 to %zd)", what, *i,
                     PyTuple_GET_SIZE(seq) - 1);
        return -1;
    }
    return 0;
}

/* --- Writer ---------------------------------------------------------------------------------------- */

/* Each item of ``tuple`` is bytes (width 0), or a tuple of ``width`` bytes. */
static int
all_bytes(PyObject *tuple, Py_ssize_t width, const char *what)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tuple); i++) {
        PyObject *item = PyTuple_GET_ITEM(tuple, i);
        int ok = width ? PyTuple_Check(item) && PyTuple_GET_SIZE(item) == width : PyBytes_Check(item);
        for (Py_ssize_t k = 0; ok && width && k < width; k++)
            ok = PyBytes_Check(PyTuple_GET_ITEM(item, k));
        if (!ok) {
            if (width)
                PyErr_Format(PyExc_TypeError, "Writer: %s[%zd] must be a tuple of %zd bytes", what, i, width);
            else
                PyErr_Format(PyExc_TypeError, "Writer: %s[%zd] must be bytes, not %.100s", what, i,
                             Py_TYPE(item)->tp_name);
            return -1;
        }
    }
    return 0;
}

static int
Writer_init(Writer *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"hmac", "lines", "seats", "win", "bill", "loss", "ext_tail", NULL};
    PyObject *hmac, *lines, *seats, *win, *bill, *loss, *ext_tail;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!SSSS:Writer", kwlist, &HmacType, &hmac, &PyTuple_Type,
                                     &lines, &PyTuple_Type, &seats, &win, &bill, &loss, &ext_tail))
        return -1;
    if (!hmac_keyed((Hmac *)hmac) || all_bytes(lines, 3, "lines") < 0 || all_bytes(seats, 0, "seats") < 0)
        return -1;
    Py_INCREF(hmac);
    Py_XSETREF(self->hmac, (Hmac *)hmac);
    Py_XSETREF(self->lines, Py_NewRef(lines));
    Py_XSETREF(self->seats, Py_NewRef(seats));
    Py_XSETREF(self->win, Py_NewRef(win));
    Py_XSETREF(self->bill, Py_NewRef(bill));
    Py_XSETREF(self->loss, Py_NewRef(loss));
    Py_XSETREF(self->ext_tail, Py_NewRef(ext_tail));
    return 0;
}

static void
Writer_dealloc(Writer *self)
{
    Py_XDECREF(self->hmac);
    Py_XDECREF(self->lines);
    Py_XDECREF(self->seats);
    Py_XDECREF(self->win);
    Py_XDECREF(self->bill);
    Py_XDECREF(self->loss);
    Py_XDECREF(self->ext_tail);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
ready(Writer *self)
{
    if (self->hmac == NULL)
        PyErr_SetString(PyExc_ValueError, "Writer: not initialised (__init__ was not called)");
    return self->hmac != NULL;
}

/* bid(bid_id, imp_id, line, price, cur, expiry, test, deal, value_micros, p, ltv, source) -> bytes.
 * The notice URLs share ``Hmac.query``'s signed query (``signed_query`` in ``_native.c``). */
enum { W_BID, W_IMP, W_LINE, W_PRICE, W_CUR, W_EXPIRY, W_TEST, W_DEAL, W_VALUE, W_P, W_LTV, W_SOURCE, W_N };
#define BID_LITERALS 256  /* more than the bid object's own punctuation and names (about 120 bytes) */

static PyObject *
Writer_bid(Writer *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const int text[] = {W_BID, W_IMP, W_CUR, W_EXPIRY, W_TEST, W_SOURCE};
    static const char *const names[W_N] = {"bid: bid_id", "bid: imp_id", "bid: line", "bid: price",
                                           "bid: cur", "bid: expiry", "bid: test", "bid: deal",
                                           "bid: value_micros", "bid: p", "bid: ltv", "bid: source"};
    const char *s[W_N] = {0};
    size_t n[W_N] = {0};
    double price, p_conv, ltv;
    long long value_micros;
    Py_ssize_t line;
    char stack[2048], nums[4][FLOAT_CHARS];
    size_t num_len[4];

    if (nargs != W_N) {
        PyErr_Format(PyExc_TypeError, "Writer.bid takes %d arguments (%zd given)", W_N, nargs);
        return NULL;
    }
    if (!ready(self))
        return NULL;
    for (size_t k = 0; k < sizeof text / sizeof text[0]; k++)
        if (text_arg(args[text[k]], names[text[k]], &s[text[k]], &n[text[k]]) < 0)
            return NULL;
    if (args[W_DEAL] != Py_None && text_arg(args[W_DEAL], "bid: deal (or None)", &s[W_DEAL], &n[W_DEAL]) < 0)
        return NULL;
    if (index_arg(args[W_LINE], names[W_LINE], self->lines, &line) < 0 ||
        float_arg(args[W_PRICE], names[W_PRICE], &price) < 0 || float_arg(args[W_P], names[W_P], &p_conv) < 0 ||
        float_arg(args[W_LTV], names[W_LTV], &ltv) < 0)
        return NULL;
    if (!PyLong_Check(args[W_VALUE])) {
        PyErr_Format(PyExc_TypeError, "Writer.bid: value_micros must be int, not %.100s",
                     Py_TYPE(args[W_VALUE])->tp_name);
        return NULL;
    }
    value_micros = PyLong_AsLongLong(args[W_VALUE]);
    if (value_micros == -1 && PyErr_Occurred())
        return NULL;
    if (!isfinite(price)) {
        PyErr_Format(PyExc_ValueError, "Writer.bid: price must be finite, got %R", args[W_PRICE]);
        return NULL;
    }
    /* The model's outputs may be NaN or infinite (JSON has no such numbers): written as 0.0. */
    const double numbers[4] = {price, (double)value_micros / 1e6, isfinite(p_conv) ? p_conv : 0.0,
                               isfinite(ltv) ? ltv : 0.0};
    for (int k = 0; k < 4; k++) {
        char *end = put_float(nums[k], numbers[k]);
        if (end == NULL)
            return NULL;
        num_len[k] = (size_t)(end - nums[k]);
    }

    PyObject *parts = PyTuple_GET_ITEM(self->lines, line), *members = PyTuple_GET_ITEM(parts, 2);
    const Text t[Q_N] = {
        [Q_BID] = {s[W_BID], n[W_BID]}, [Q_IMP] = {s[W_IMP], n[W_IMP]}, [Q_IMP_QUOTED] = {NULL, 0},
        [Q_SIGNED_IDS] = BYTES_TEXT(PyTuple_GET_ITEM(parts, 0)),
        [Q_QUOTED_IDS] = BYTES_TEXT(PyTuple_GET_ITEM(parts, 1)),
        [Q_PRICE] = {nums[0], num_len[0]}, [Q_CUR] = {s[W_CUR], n[W_CUR]},
        [Q_EXPIRY] = {s[W_EXPIRY], n[W_EXPIRY]}, [Q_TEST] = {s[W_TEST], n[W_TEST]},
    };
    size_t q_size = signed_query_size(t);
    size_t size = q_size + BID_LITERALS + n[W_BID] + 6 * n[W_IMP] + 6 * n[W_DEAL] + 3 * q_size + n[W_SOURCE] +
                  4 * FLOAT_CHARS + (size_t)(PyBytes_GET_SIZE(self->win) + PyBytes_GET_SIZE(self->bill) +
                  PyBytes_GET_SIZE(self->loss) + PyBytes_GET_SIZE(members) + PyBytes_GET_SIZE(self->ext_tail));
    char *buf = size <= sizeof stack ? stack : PyMem_Malloc(size);
    if (buf == NULL)
        return PyErr_NoMemory();

    /* The signed query, at the start of the buffer ... */
    char *q = buf, *o = signed_query(self->hmac, buf, t);
    size_t q_len = (size_t)(o - q);

    /* ... and the Bid object after it. */
    char *bid = o;
    o = PUT_LIT(o, "{\"id\":\"");
    o = put(o, s[W_BID], n[W_BID]);
    o = PUT_LIT(o, "\",\"impid\":");
    o = put_json(o, s[W_IMP], n[W_IMP]);
    o = PUT_LIT(o, ",\"price\":");
    o = put(o, nums[0], num_len[0]);
    o = PUT_LIT(o, ",");
    o = PUT_BYTES(o, self->win);
    o = put(o, q, q_len);
    o = PUT_LIT(o, "\",");
    o = PUT_BYTES(o, self->bill);
    o = put(o, q, q_len);
    o = PUT_LIT(o, "\",");
    o = PUT_BYTES(o, self->loss);
    o = put(o, q, q_len);
    o = PUT_LIT(o, "&l=${AUCTION_LOSS}\"");
    if (s[W_DEAL] != NULL) {
        o = PUT_LIT(o, ",\"dealid\":");
        o = put_json(o, s[W_DEAL], n[W_DEAL]);
    }
    o = PUT_BYTES(o, members);
    o = PUT_LIT(o, ",\"ext\":{\"rtb\":{\"value_cpm\":");
    o = put(o, nums[1], num_len[1]);
    o = PUT_LIT(o, ",\"p_conversion\":");
    o = put(o, nums[2], num_len[2]);
    o = PUT_LIT(o, ",\"ltv\":");
    o = put(o, nums[3], num_len[3]);
    o = PUT_BYTES(o, self->ext_tail);
    o = put(o, s[W_SOURCE], n[W_SOURCE]);
    o = PUT_LIT(o, "\"}}}");

    PyObject *result = PyBytes_FromStringAndSize(bid, o - bid);
    if (buf != stack)
        PyMem_Free(buf);
    return result;
}

static int
same_bytes(PyObject *a, PyObject *b)
{
    return a == b || (PyBytes_GET_SIZE(a) == PyBytes_GET_SIZE(b) &&
                      memcmp(PyBytes_AS_STRING(a), PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(a)) == 0);
}

/* response(request_id, bids, cur) -> bytes: ``bids`` is a list of (campaign, Bid object from ``bid``),
 * grouped in one seatbid per seat, seats and bids in the order they first appear. The grouping costs
 * bids x distinct seats comparisons: a request's bids are at most its imps, and seats are few. */
static PyObject *
Writer_response(Writer *self, PyObject *const *args, Py_ssize_t nargs)
{
    const char *rid, *cur;
    size_t n_rid, n_cur;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "Writer.response takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    if (!ready(self) || text_arg(args[0], "response: request_id", &rid, &n_rid) < 0 ||
        text_arg(args[2], "response: cur", &cur, &n_cur) < 0)
        return NULL;
    PyObject *bids = args[1];
    if (!PyList_Check(bids) || PyList_GET_SIZE(bids) == 0) {
        PyErr_SetString(PyExc_TypeError, "Writer.response: bids must be a non-empty list");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(bids);
    PyObject *stack_seats[16], **seat = count <= 16 ? stack_seats : PyMem_Malloc(sizeof(PyObject *) * (size_t)count);
    if (seat == NULL)
        return PyErr_NoMemory();
    PyObject *result = NULL;
    char stack[4096], *buf = stack;
    size_t size = 64 + 6 * n_rid + n_cur;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(bids, i);
        Py_ssize_t ci;
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2 || !PyBytes_Check(PyTuple_GET_ITEM(item, 1))) {
            PyErr_Format(PyExc_TypeError, "Writer.response: bids[%zd] must be a (campaign, bytes) tuple", i);
            goto done;
        }
        if (index_arg(PyTuple_GET_ITEM(item, 0), "response: campaign", self->seats, &ci) < 0)
            goto done;
        seat[i] = PyTuple_GET_ITEM(self->seats, ci);
        size += (size_t)(PyBytes_GET_SIZE(PyTuple_GET_ITEM(item, 1)) + PyBytes_GET_SIZE(seat[i])) + 32;
    }
    if (size > sizeof stack && (buf = PyMem_Malloc(size)) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    char *o = PUT_LIT(buf, "{\"id\":");
    o = put_json(o, rid, n_rid);
    o = PUT_LIT(o, ",\"seatbid\":[");
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t first = 0;
        while (!same_bytes(seat[first], seat[i]))  /* the seat's first bid: its group is written there */
            first++;
        if (first < i)
            continue;
        if (i)
            o = PUT_LIT(o, ",");
        o = PUT_LIT(o, "{\"bid\":[");
        for (Py_ssize_t j = i; j < count; j++) {
            if (j > i && !same_bytes(seat[j], seat[i]))
                continue;
            if (j > i)
                o = PUT_LIT(o, ",");
            o = PUT_BYTES(o, PyTuple_GET_ITEM(PyList_GET_ITEM(bids, j), 1));
        }
        o = PUT_LIT(o, "],\"seat\":");
        o = PUT_BYTES(o, seat[i]);
        o = PUT_LIT(o, "}");
    }
    o = PUT_LIT(o, "],\"cur\":\"");
    o = put(o, cur, n_cur);
    o = PUT_LIT(o, "\"}");
    result = PyBytes_FromStringAndSize(buf, o - buf);
done:
    if (buf != stack)
        PyMem_Free(buf);
    if (seat != stack_seats)
        PyMem_Free(seat);
    return result;
}

PyObject *
writer_bid(PyObject *writer, PyObject *const *args, Py_ssize_t nargs)
{
    return Writer_bid((Writer *)writer, args, nargs);
}

PyObject *
writer_response(PyObject *writer, PyObject *const *args, Py_ssize_t nargs)
{
    return Writer_response((Writer *)writer, args, nargs);
}

static PyMethodDef Writer_methods[] = {
    {"bid", (PyCFunction)(void (*)(void))Writer_bid, METH_FASTCALL,
     "bid(bid_id, imp_id, line, price, cur, expiry, test, deal, value_micros, p, ltv, source) -> bytes"},
    {"response", (PyCFunction)(void (*)(void))Writer_response, METH_FASTCALL,
     "response(request_id, bids: list[tuple[int, bytes]], cur) -> bytes"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject WriterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "bidder._native.Writer",
    .tp_basicsize = sizeof(Writer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Writer(hmac, lines, seats, win, bill, loss, ext_tail): bid responses (bidder/response.py).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Writer_init,
    .tp_dealloc = (destructor)Writer_dealloc,
    .tp_methods = Writer_methods,
};
