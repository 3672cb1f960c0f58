/* The decision's steps joined in C: ``bidder.decide.decide_py`` in one call.
 *
 * The steps themselves were C already (the request mask, the imp step, the admission, the writer); what
 * joined them was Python. Here the same calls are made in the same order, each part read from the engine
 * on every call as the Python reads it: a decision of the simple banner takes 61,400 instructions
 * against 69,960 with the twin (callgrind, README "Benchmarks"). The tests run both on the same requests
 * and compare answers, counters and reservations.
 */
#include "_native.h"

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyTypeObject *outcome;       /* ``decide.Outcome``, a tuple subclass; NULL until __init__ succeeded */
    PyObject *no_bid;            /* ``Outcome(204, b"")`` */
    PyObject *from_usd, *held;   /* ``fx.from_usd_micros``, ``fx.held_micros``: for currencies other than USD */
    Py_ssize_t admissions;
    PyObject *expiry, *expiry_text;  /* the last expiry and its text: the same for every bid in a second */
} Decide;

static PyObject *s_no_match, *s_ai, *s_test[2], *status_200, *f_zero;

/* An imp that gets a bid (new references), with what its choice says that the response reads again. */
typedef struct {
    PyObject *imp, *choice, *bid_id, *ci, *price, *line, *source;
    int ai;  /* the model priced it (``source == "ai"``) */
} Chosen;

static void
chosen_clear(Chosen *c)
{
    Py_CLEAR(c->imp);
    Py_CLEAR(c->choice);
    Py_CLEAR(c->bid_id);
    Py_CLEAR(c->ci);
    Py_CLEAR(c->price);
    Py_CLEAR(c->line);
    Py_CLEAR(c->source);
}

/* ``s == text`` for one of the interned strings above. */
static int
is_text(PyObject *s, PyObject *text)
{
    return s == text || (PyUnicode_Check(s) && PyUnicode_Compare(s, text) == 0);
}

/* ``t``, a 2-tuple, as its items (borrowed); -1 with an exception set naming ``what``. */
static int
pair(PyObject *t, const char *what, PyObject **a, PyObject **b)
{
    if (t == NULL)
        return -1;
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 2) {
        PyErr_Format(PyExc_TypeError, "Decide: %s must return a pair, got %.100s", what, Py_TYPE(t)->tp_name);
        return -1;
    }
    *a = PyTuple_GET_ITEM(t, 0);
    *b = PyTuple_GET_ITEM(t, 1);
    return 0;
}

/* The bid id: the engine's prefix and the serial in hex. */
static PyObject *
bid_id(PyObject *prefix, PyObject *serial)
{
    unsigned long long s = PyLong_AsUnsignedLongLong(serial);
    if (s == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t n;
    const char *p = PyUnicode_Check(prefix) ? PyUnicode_AsUTF8AndSize(prefix, &n) : NULL;
    if (p == NULL) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_TypeError, "Decide: _bid_prefix must be str, not %.100s", Py_TYPE(prefix)->tp_name);
        return NULL;
    }
    if (n > 64)
        return PyUnicode_FromFormat("%U%llx", prefix, s);
    char buf[64 + 16];  /* the prefix, and a serial of at most 16 hex digits written from the right */
    int digits = 1;
    while (digits < 16 && s >> (4 * digits))
        digits++;
    memcpy(buf, p, n);
    for (char *d = buf + n + digits; d > buf + n; s >>= 4)
        *--d = "0123456789abcdef"[s & 15];
    return PyUnicode_DecodeUTF8(buf, n + digits, "strict");
}

/* ``decide._choose`` for one admission of a choice bidding ``bid`` (USD micros CPM) written at ``price``:
 * the cost its campaign reserves under ``held``, then ``budget.admit``; a new reference to the refusal
 * (None when admitted). */
static PyObject *
admit(Decide *self, PyObject *engine, PyObject *bid, PyObject *ci, PyObject *serial, PyObject *held,
      PyObject *price, PyObject *rate, int usd)
{
    PyObject *micros = NULL, *budget = NULL, *fn = NULL, *refused = NULL;
    if (held == Py_None)
        return Py_NewRef(Py_None);
    if (usd) {
        long long b = PyLong_AsLongLong(bid);
        if (b == -1 && PyErr_Occurred())
            return NULL;
        micros = PyLong_FromLongLong(b / 1000 - (b % 1000 < 0));  /* ``//``: floor division */
    } else {
        micros = PyObject_Vectorcall(self->held, (PyObject *[]){price, rate}, 2, NULL);
    }
    if (micros != NULL && (budget = attr(engine, A_BUDGET)) != NULL && (fn = attr(budget, A_ADMIT)) != NULL)
        refused = PyObject_Vectorcall(fn, (PyObject *[]){ci, held, micros, serial}, 4, NULL);
    Py_XDECREF(micros);
    Py_XDECREF(budget);
    Py_XDECREF(fn);
    return refused;
}

/* The price a bid of ``bid`` USD micros CPM is written at, in the currency at ``rate``. */
static PyObject *
price_of(Decide *self, PyObject *bid, PyObject *rate, int usd)
{
    if (!usd)
        return PyObject_Vectorcall(self->from_usd, (PyObject *[]){bid, rate}, 2, NULL);
    double b = PyLong_AsDouble(bid);
    return b == -1.0 && PyErr_Occurred() ? NULL : PyFloat_FromDouble(b / 1e6);
}

/* ``fallback.observe(best.value / 1e6)``, for a choice the model priced. */
static int
observe(PyObject *engine, PyObject *best)
{
    PyObject *value = attr(best, A_VALUE), *v = NULL, *fallback = NULL, *r = NULL;
    int ok = -1;
    if (value != NULL) {
        double x = PyLong_AsDouble(value);
        if (!(x == -1.0 && PyErr_Occurred()) && (v = PyFloat_FromDouble(x / 1e6)) != NULL &&
            (fallback = attr(engine, A_FALLBACK_PRICER)) != NULL &&
            (r = PyObject_VectorcallMethod(interned[A_OBSERVE], (PyObject *[]){fallback, v}, 2, NULL)) != NULL)
            ok = 0;
    }
    Py_XDECREF(value);
    Py_XDECREF(v);
    Py_XDECREF(fallback);
    Py_XDECREF(r);
    return ok;
}

/* ``decide._choose``: 1 with the imp's choice in ``*c``; 0 with ``*why`` (a new reference) the reason for
 * no bid; -1 with an exception set. A campaign refused by its budget or pacer steps aside. */
static int
choose(Decide *self, PyObject *engine, PyObject *req, PyObject *imp, PyObject *idx, PyObject *m, PyObject *ctx,
       PyObject *held, PyObject *rate, int usd, Chosen *c, PyObject **why)
{
    PyObject *step = attr(engine, A_IMP_STEP), *got = NULL, *line = NULL, *ci = NULL, *serial = NULL, *bid = NULL;
    PyObject *price = NULL, *refused = NULL;
    int ok = -1;
    Py_INCREF(m);  /* narrowed as campaigns step aside */
    *why = Py_NewRef(s_no_match);
    if (step == NULL)
        goto done;
    for (Py_ssize_t k = 0; k < self->admissions; k++) {
        PyObject *best, *found;
        got = PyObject_Vectorcall(step, (PyObject *[]){engine, req, imp, m, ctx}, 5, NULL);
        if (pair(got, "the imp step", &best, &found) < 0)
            goto done;
        if (best == Py_None) {
            if (is_text(*why, s_no_match))
                Py_SETREF(*why, Py_NewRef(found));
            ok = 0;
            goto done;
        }
        PyObject *lines = attr(engine, A_LINE_CAMPAIGN), *ids = attr(engine, A_IDS);
        if ((line = attr(best, A_LINE)) != NULL && lines != NULL && ids != NULL &&
            (ci = PyObject_GetItem(lines, line)) != NULL && (serial = PyIter_Next(ids)) == NULL && !PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "Decide: the engine's bid serials ran out");
        Py_XDECREF(lines);
        Py_XDECREF(ids);
        if (serial == NULL || (bid = attr(best, A_BID)) == NULL || (price = price_of(self, bid, rate, usd)) == NULL ||
            (refused = admit(self, engine, bid, ci, serial, held, price, rate, usd)) == NULL)
            goto done;
        if (refused == Py_None) {
            PyObject *prefix = attr(engine, A_BID_PREFIX);
            c->bid_id = prefix == NULL ? NULL : bid_id(prefix, serial);
            Py_XDECREF(prefix);
            if (c->bid_id == NULL || (c->source = attr(best, A_SOURCE)) == NULL ||
                ((c->ai = is_text(c->source, s_ai)) && observe(engine, best) < 0))
                goto done;
            c->imp = Py_NewRef(imp);
            c->choice = Py_NewRef(best);
            c->ci = Py_NewRef(ci);
            c->price = Py_NewRef(price);
            c->line = Py_NewRef(line);
            Py_CLEAR(*why);
            ok = 1;
            goto done;
        }
        PyObject *stats = attr(engine, A_CAMPAIGN_STATS), *cs = NULL, *no_bid = NULL, *campaign = NULL;
        PyObject *not_campaign = NULL, *narrowed = NULL;
        if (stats != NULL && (cs = PyObject_GetItem(stats, ci)) != NULL && (no_bid = attr(cs, A_NO_BID)) != NULL &&
            bump(no_bid, refused) == 0 && (campaign = attr(idx, A_CAMPAIGN_LINES)) != NULL) {
            Py_SETREF(campaign, PyObject_GetItem(campaign, ci));
            if (campaign != NULL && (not_campaign = PyNumber_Invert(campaign)) != NULL)
                narrowed = PyNumber_And(m, not_campaign);
        }
        Py_XDECREF(stats);
        Py_XDECREF(cs);
        Py_XDECREF(no_bid);
        Py_XDECREF(campaign);
        Py_XDECREF(not_campaign);
        if (narrowed == NULL)
            goto done;
        Py_SETREF(m, narrowed);
        Py_SETREF(*why, refused);
        refused = NULL;
        Py_CLEAR(got);
        Py_CLEAR(line);
        Py_CLEAR(ci);
        Py_CLEAR(serial);
        Py_CLEAR(bid);
        Py_CLEAR(price);
    }
    ok = 0;
done:
    if (ok < 0) {
        Py_CLEAR(*why);
        chosen_clear(c);
    }
    Py_XDECREF(step);
    Py_XDECREF(got);
    Py_XDECREF(line);
    Py_XDECREF(ci);
    Py_XDECREF(serial);
    Py_XDECREF(bid);
    Py_XDECREF(price);
    Py_XDECREF(refused);
    Py_DECREF(m);
    return ok;
}

/* One bid's bytes from the writer (``decide._respond``'s loop), counted for its campaign. */
static PyObject *
write_bid(PyObject *engine, PyObject *writer, PyObject *explain, PyObject *cur, PyObject *x, PyObject *t,
          const Chosen *c)
{
    PyObject *ch = c->choice, *ctx = NULL, *explained = NULL, *p = f_zero, *ltv = f_zero, *stats = NULL, *cs = NULL;
    PyObject *imp_id = NULL, *deal = NULL, *value = NULL, *body = NULL;
    if (c->ai && ((ctx = attr(ch, A_CTX)) == NULL ||
                  pair(explained = PyObject_Vectorcall(explain, (PyObject *[]){c->line, ctx}, 2, NULL), "explain", &p,
                       &ltv) < 0))
        goto done;
    if ((stats = attr(engine, A_CAMPAIGN_STATS)) == NULL || (cs = PyObject_GetItem(stats, c->ci)) == NULL ||
        add_one(cs, A_BIDS) < 0 || (imp_id = attr(c->imp, A_ID)) == NULL || (deal = attr(ch, A_DEAL)) == NULL ||
        (value = attr(ch, A_VALUE)) == NULL)
        goto done;
    PyObject *args[] = {writer, c->bid_id, imp_id, c->line, c->price, cur, x, t, deal, value, p, ltv, c->source};
    body = Py_IS_TYPE(writer, &WriterType) ? writer_bid(writer, args + 1, 12)
                                           : PyObject_VectorcallMethod(interned[A_BID], args, 13, NULL);
done:
    Py_XDECREF(ctx);
    Py_XDECREF(explained);
    Py_XDECREF(stats);
    Py_XDECREF(cs);
    Py_XDECREF(imp_id);
    Py_XDECREF(deal);
    Py_XDECREF(value);
    return body;
}

/* ``str(expiry)``, a new reference: made once a second, not per bid. */
static PyObject *
expiry_text(Decide *self, PyObject *expiry)
{
    int same = self->expiry == NULL ? 0 : PyObject_RichCompareBool(expiry, self->expiry, Py_EQ);
    if (same < 0)
        return NULL;
    if (!same) {
        PyObject *text = PyObject_Str(expiry);
        if (text == NULL)
            return NULL;
        Py_XSETREF(self->expiry_text, text);
        Py_XSETREF(self->expiry, Py_NewRef(expiry));
    }
    return Py_NewRef(self->expiry_text);
}

/* ``decide._respond``: ``Outcome(200, body)`` with a bid for each chosen imp. */
static PyObject *
respond(Decide *self, PyObject *engine, PyObject *req, PyObject *cur, PyObject *expiry, int test, Chosen *chosen,
        Py_ssize_t n)
{
    PyObject *writer = attr(engine, A_WRITER), *scorer = NULL, *explain = NULL, *x = NULL, *bids = NULL;
    PyObject *stats = NULL, *rid = NULL, *body = NULL, *result = NULL;
    if (writer == NULL || (scorer = attr(engine, A_SCORER)) == NULL ||
        (explain = PyObject_GetAttr(scorer, interned[A_EXPLAIN])) == NULL || (x = expiry_text(self, expiry)) == NULL ||
        (bids = PyList_New(n)) == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *b = write_bid(engine, writer, explain, cur, x, s_test[test], &chosen[i]);
        PyObject *item = b == NULL ? NULL : PyTuple_Pack(2, chosen[i].ci, b);
        Py_XDECREF(b);
        if (item == NULL)
            goto done;
        PyList_SET_ITEM(bids, i, item);
    }
    if ((stats = attr(engine, A_STATS)) == NULL || add_one(stats, A_BIDS) < 0 || (rid = attr(req, A_ID)) == NULL ||
        (body = Py_IS_TYPE(writer, &WriterType)
                    ? writer_response(writer, (PyObject *[]){rid, bids, cur}, 3)
                    : PyObject_VectorcallMethod(interned[A_RESPONSE], (PyObject *[]){writer, rid, bids, cur}, 4,
                                                NULL)) == NULL ||
        (result = self->outcome->tp_alloc(self->outcome, 2)) == NULL)
        goto done;
    PyTuple_SET_ITEM(result, 0, Py_NewRef(status_200));
    PyTuple_SET_ITEM(result, 1, Py_NewRef(body));
done:
    Py_XDECREF(writer);
    Py_XDECREF(scorer);
    Py_XDECREF(explain);
    Py_XDECREF(x);
    Py_XDECREF(bids);
    Py_XDECREF(stats);
    Py_XDECREF(rid);
    Py_XDECREF(body);
    return result;
}

/* decide(engine, req, cur) -> Outcome: see ``bidder.decide.decide_py``. */
static PyObject *
Decide_call(Decide *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (self->outcome == NULL) {
        PyErr_SetString(PyExc_TypeError, "Decide was not initialised");
        return NULL;
    }
    if (PyVectorcall_NARGS(nargsf) != 3 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "Decide takes (engine, req, cur)");
        return NULL;
    }
    PyObject *engine = args[0], *req = args[1], *cur = args[2];
    PyObject *stats = attr(engine, A_STATS), *idx = NULL, *wall = NULL, *now = NULL, *mask_of = NULL, *live = NULL;
    PyObject *got = NULL, *rates = NULL, *rate = NULL, *settings = NULL, *ttl = NULL, *sec = NULL, *expiry = NULL;
    PyObject *test = NULL, *imps = NULL, *no_bid = NULL, *reason = Py_NewRef(s_no_match), *result = NULL;
    PyObject *m, *ctx;
    Chosen stack[8], *chosen = stack;
    Py_ssize_t n = 0, nimps = 0;
    int t;
    if (stats == NULL || (idx = attr(engine, A_INDEX)) == NULL || (wall = attr(engine, A_WALL)) == NULL ||
        (now = PyObject_CallNoArgs(wall)) == NULL || (mask_of = attr(engine, A_REQUEST_MASK)) == NULL ||
        (live = attr(idx, A_LIVE)) == NULL ||
        pair(got = PyObject_Vectorcall(mask_of, (PyObject *[]){req, now, live}, 3, NULL), "the request mask", &m,
             &ctx) < 0 ||
        (t = PyObject_IsTrue(m)) < 0 || (no_bid = attr(stats, A_NO_BID)) == NULL)
        goto done;
    if (!t)
        goto no_bid;
    if ((rates = attr(engine, A_RATES)) == NULL || (rate = PyObject_GetItem(rates, cur)) == NULL ||
        (settings = attr(engine, A_SETTINGS)) == NULL || (ttl = attr(settings, A_BID_TTL)) == NULL ||
        (sec = PyNumber_Long(now)) == NULL || (expiry = PyNumber_Add(sec, ttl)) == NULL ||
        (test = attr(req, A_TEST)) == NULL || (imps = attr(req, A_IMP)) == NULL)
        goto done;
    double r = PyFloat_AsDouble(rate);
    if (r == -1.0 && PyErr_Occurred())
        goto done;
    if (!PyList_Check(imps)) {
        PyErr_Format(PyExc_TypeError, "Decide: req.imp must be a list, got %.100s", Py_TYPE(imps)->tp_name);
        goto done;
    }
    nimps = PyList_GET_SIZE(imps);
    if (nimps > (Py_ssize_t)(sizeof stack / sizeof stack[0]) &&
        (chosen = PyMem_Malloc(nimps * sizeof *chosen)) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    int is_test = is_int(test, 1);
    PyObject *held = is_test ? Py_None : expiry;  /* test traffic is bid but never booked: it reserves nothing */
    for (Py_ssize_t i = 0; i < nimps && i < PyList_GET_SIZE(imps); i++) {
        PyObject *why;
        memset(&chosen[n], 0, sizeof chosen[n]);
        PyObject *imp = Py_NewRef(PyList_GET_ITEM(imps, i));
        int c = choose(self, engine, req, imp, idx, m, ctx, held, rate, r == 1.0, &chosen[n], &why);
        Py_DECREF(imp);
        if (c < 0)
            goto done;
        if (c > 0)
            n++;
        else if (PyObject_IsTrue(why) && is_text(reason, s_no_match))
            Py_SETREF(reason, why);
        else
            Py_DECREF(why);
    }
    if (n > 0) {
        result = respond(self, engine, req, cur, expiry, is_test, chosen, n);
        goto done;
    }
no_bid:
    if (bump(no_bid, reason) == 0)
        result = Py_NewRef(self->no_bid);
done:
    for (Py_ssize_t i = 0; i < n; i++)
        chosen_clear(&chosen[i]);
    if (chosen != stack)
        PyMem_Free(chosen);
    Py_XDECREF(stats);
    Py_XDECREF(idx);
    Py_XDECREF(wall);
    Py_XDECREF(now);
    Py_XDECREF(mask_of);
    Py_XDECREF(live);
    Py_XDECREF(got);
    Py_XDECREF(rates);
    Py_XDECREF(rate);
    Py_XDECREF(settings);
    Py_XDECREF(ttl);
    Py_XDECREF(sec);
    Py_XDECREF(expiry);
    Py_XDECREF(test);
    Py_XDECREF(imps);
    Py_XDECREF(no_bid);
    Py_XDECREF(reason);
    return result;
}

static int
strings_ready(void)
{
    if (s_no_match != NULL)
        return 0;
    return (s_no_match = PyUnicode_InternFromString("no_match")) == NULL ||
                   (s_ai = PyUnicode_InternFromString("ai")) == NULL ||
                   (s_test[0] = PyUnicode_InternFromString("0")) == NULL ||
                   (s_test[1] = PyUnicode_InternFromString("1")) == NULL ||
                   (status_200 = PyLong_FromLong(200)) == NULL || (f_zero = PyFloat_FromDouble(0.0)) == NULL
               ? -1
               : 0;
}

static int
Decide_init(Decide *self, PyObject *args, PyObject *kwds)
{
    PyTypeObject *outcome;
    PyObject *no_bid, *from_usd, *held;
    Py_ssize_t admissions;
    if (self->outcome != NULL) {
        PyErr_SetString(PyExc_TypeError, "Decide is already initialised");
        return -1;
    }
    if ((kwds != NULL && PyDict_GET_SIZE(kwds)) ||
        !PyArg_ParseTuple(args, "O!OOOn:Decide", &PyType_Type, &outcome, &no_bid, &from_usd, &held, &admissions)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "Decide takes positional arguments only");
        return -1;
    }
    if (!PyType_IsSubtype(outcome, &PyTuple_Type) || !PyObject_TypeCheck(no_bid, outcome)) {
        PyErr_SetString(PyExc_TypeError, "Decide: outcome must be a tuple type and no_bid one of it");
        return -1;
    }
    if (!PyCallable_Check(from_usd) || !PyCallable_Check(held) || admissions < 1) {
        PyErr_SetString(PyExc_TypeError, "Decide: from_usd and held must be callable, admissions >= 1");
        return -1;
    }
    if (strings_ready() < 0)
        return -1;
    self->no_bid = Py_NewRef(no_bid);
    self->from_usd = Py_NewRef(from_usd);
    self->held = Py_NewRef(held);
    self->admissions = admissions;
    self->outcome = (PyTypeObject *)Py_NewRef(outcome);  /* last: what says it is initialised */
    return 0;
}

static int
Decide_traverse(Decide *self, visitproc visit, void *arg)
{
    Py_VISIT(self->outcome);
    Py_VISIT(self->no_bid);
    Py_VISIT(self->from_usd);
    Py_VISIT(self->held);
    Py_VISIT(self->expiry);
    Py_VISIT(self->expiry_text);
    return 0;
}

static int
Decide_clear(Decide *self)
{
    Py_CLEAR(self->outcome);
    Py_CLEAR(self->no_bid);
    Py_CLEAR(self->from_usd);
    Py_CLEAR(self->held);
    Py_CLEAR(self->expiry);
    Py_CLEAR(self->expiry_text);
    return 0;
}

static void
Decide_dealloc(Decide *self)
{
    PyObject_GC_UnTrack(self);
    Decide_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Decide_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args, (void)kwds;  /* __init__ reads them */
    Decide *self = (Decide *)type->tp_alloc(type, 0);
    if (self != NULL)
        self->vectorcall = (vectorcallfunc)Decide_call;
    return (PyObject *)self;
}

PyTypeObject DecideType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "bidder._native.Decide",
    .tp_basicsize = sizeof(Decide),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "Decide(outcome, no_bid, from_usd, held, admissions): decide(engine, req, cur) -> Outcome.",
    .tp_new = Decide_new,
    .tp_init = (initproc)Decide_init,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Decide, vectorcall),
    .tp_traverse = (traverseproc)Decide_traverse,
    .tp_clear = (inquiry)Decide_clear,
    .tp_dealloc = (destructor)Decide_dealloc,
};
