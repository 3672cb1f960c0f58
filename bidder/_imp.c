/* The imp step in C: an impression's best priced line, among the lines its request allows.
 *
 * ``bidder.impstep.imp_best_py`` is its Python twin, over the index's ``int`` bitsets; the tests compare
 * the two. Here the bitsets are rows of 64-bit words (``impstep.imp_tables``, built once per campaign
 * load), and the media types, ``battr`` and deals of one imp narrow the request's lines in buffers on the
 * stack. Only a set of lines to price becomes a Python object: the ``bytes`` the model's kernel reads.
 * The price itself goes through the same engine parts as in Python, read from the engine on each call:
 * its breaker, its model's fused kernel (``_best``) or generic path (``_scored``), its clock and its
 * fallback (``_fallback``). The floor is ``impstep.floor_py``, computed the same way in doubles.
 */
#include "_native.h"
#include <math.h>

enum { F_BANNER, F_VIDEO, F_AUDIO, F_NATIVE, NFORMATS };  /* ``value.FORMATS`` */
#define N_DEVICE_TYPES 9  /* ``value.N_DEVICE_TYPES`` */

typedef struct {
    PyObject_HEAD
    int ready;               /* 0 until __init__ succeeded */
    uint64_t *rows;          /* nrows x nwords */
    Py_ssize_t nrows, nwords, nbytes;
    Py_ssize_t open, media[NFORMATS];
    PyObject *banner_size, *mime, *attr, *deal, *seat, *advertiser;  /* value -> row */
    Py_ssize_t ndurations;
    long long *durations;    /* creative duration ... */
    Py_ssize_t *duration_rows; /* ... and its row */
    PyObject *floor_py;      /* impstep.floor_py, for the floors doubles do not settle */
    PyObject *choice, *replace;
    PyObject *out;           /* the engine's ``_out`` that ``out_view`` holds */
    Py_buffer out_view;
    int priced_here;         /* 1 with the scorer's ``value.PriceTable`` in the two views below */
    Py_buffer value, cap;    /* (contexts, lines) float64, (lines,) int64 */
    Py_ssize_t nlines;
} ImpStep;

static PyObject *s_ai, *s_fallback, *s_usd, *s_no_match, *s_currency, *s_below_floor, *s_private_auction;
static PyObject *kw_replace;  /* ("fmt", "w", "h") */

static inline const uint64_t *
row(const ImpStep *self, Py_ssize_t r)
{
    return self->rows + r * self->nwords;
}

/* A bound for a duration: the int ``o``, clamped to long long (durations are small). */
static int
clamped(PyObject *o, long long *out)
{
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (x == -1 && PyErr_Occurred())
        return -1;
    *out = overflow > 0 ? LLONG_MAX : overflow < 0 ? LLONG_MIN : x;
    return 0;
}

/* ``u`` = the union of the rows ``table[v]`` for the values of ``list``; ``how``: 0 lower-cases the
 * values, -1 takes them as they are. */
static int
union_rows(const ImpStep *self, uint64_t *u, PyObject *list, PyObject *table, int how)
{
    Py_ssize_t nw = self->nwords;
    memset(u, 0, nw * sizeof *u);
    if (!PyList_Check(list)) {
        PyErr_Format(PyExc_TypeError, "ImpStep: expected a list, got %.100s", Py_TYPE(list)->tp_name);
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        PyObject *v = PyList_GET_ITEM(list, i);
        PyObject *key = how < 0 ? Py_NewRef(v) : recase(v, how);
        if (key == NULL)
            return -1;
        Py_ssize_t r = row_of(table, key);
        Py_DECREF(key);
        if (r == -2)
            return -1;
        if (r >= 0)
            for (Py_ssize_t k = 0; k < nw; k++)
                u[k] |= row(self, r)[k];
    }
    return 0;
}

/* ``m &= table.get(key, 0)`` */
static int
and_row_of(const ImpStep *self, uint64_t *m, PyObject *table, PyObject *key)
{
    Py_ssize_t r = row_of(table, key);
    if (r == -2)
        return -1;
    if (r < 0)
        memset(m, 0, self->nwords * sizeof *m);
    else
        and_words(m, row(self, r), self->nwords);
    return 0;
}

/* --- media: ``impstep.media``, one format at a time -------------------------------------------------- */

/* A media type without a size: ``w = h = 0``. */
static void
no_size(PyObject **w, PyObject **h)
{
    *w = Py_NewRef(zero);
    *h = Py_NewRef(zero);
}

/* ``*s = *s or 0`` */
static int
or_zero(PyObject **s)
{
    int t = truth(*s);
    if (t == 0)
        Py_SETREF(*s, Py_NewRef(zero));
    return t < 0 ? -1 : 0;
}

/* The banner's lines into ``mask``, its size into ``*w``, ``*h`` (new references). */
static int
banner_mask(const ImpStep *self, PyObject *b, uint64_t *mask, PyObject **w, PyObject **h)
{
    Py_ssize_t nw = self->nwords;
    PyObject *format = NULL, *bw = NULL, *bh = NULL, *key = NULL;
    int ok = -1, t, sized;
    if ((format = attr(b, A_FORMAT)) == NULL || (bw = attr(b, A_W)) == NULL || (bh = attr(b, A_H)) == NULL)
        goto done;
    if ((t = truth(bw)) < 0 || (sized = t ? truth(bh) : 0) < 0 || (t = truth(format)) < 0)
        goto done;
    memset(mask, 0, nw * sizeof *mask);
    if (t) {  /* the sizes of ``format``, after ``w`` x ``h`` when both are given */
        if (!PyList_Check(format)) {
            PyErr_SetString(PyExc_TypeError, "ImpStep: banner.format must be a list");
            goto done;
        }
        for (Py_ssize_t i = -sized; i < PyList_GET_SIZE(format); i++) {
            PyObject *fw, *fh;
            if (i < 0) {
                fw = Py_NewRef(bw);
                fh = Py_NewRef(bh);
            } else if ((fw = attr(PyList_GET_ITEM(format, i), A_W)) == NULL ||
                       (fh = attr(PyList_GET_ITEM(format, i), A_H)) == NULL) {
                Py_XDECREF(fw);
                goto done;
            }
            if (*w == NULL) {
                *w = Py_NewRef(fw);
                *h = Py_NewRef(fh);
            }
            key = PyTuple_Pack(2, fw, fh);
            Py_DECREF(fw);
            Py_DECREF(fh);
            if (key == NULL)
                goto done;
            Py_ssize_t r = row_of(self->banner_size, key);
            Py_CLEAR(key);
            if (r == -2)
                goto done;
            if (r >= 0)
                for (Py_ssize_t k = 0; k < nw; k++)
                    mask[k] |= row(self, r)[k];
        }
    } else if (sized) {
        *w = Py_NewRef(bw);
        *h = Py_NewRef(bh);
        if ((key = PyTuple_Pack(2, bw, bh)) == NULL)
            goto done;
        Py_ssize_t r = row_of(self->banner_size, key);
        if (r == -2)
            goto done;
        if (r >= 0)
            memcpy(mask, row(self, r), nw * sizeof *mask);
    } else {
        no_size(w, h);
    }
    ok = 0;
done:
    Py_XDECREF(format);
    Py_XDECREF(bw);
    Py_XDECREF(bh);
    Py_XDECREF(key);
    return ok;
}

/* A video's or audio's lines into ``mask`` (its format's, within its durations, playing one of its
 * ``mimes``), using ``tmp``; its size into ``*w``, ``*h``. */
static int
player_mask(const ImpStep *self, PyObject *media, PyObject *mimes, int fmt, uint64_t *mask, uint64_t *tmp,
            PyObject **w, PyObject **h)
{
    Py_ssize_t nw = self->nwords;
    PyObject *lo = NULL, *hi = NULL;
    long long l, u = LLONG_MAX;
    int ok = -1;
    if ((lo = attr(media, A_MINDURATION)) == NULL || (hi = attr(media, A_MAXDURATION)) == NULL ||
        clamped(lo, &l) < 0)
        goto done;
    if (hi != Py_None) {
        if (clamped(hi, &u) < 0)
            goto done;
        if (u <= 0)
            u = LLONG_MAX;  /* no maximum */
    }
    memset(mask, 0, nw * sizeof *mask);
    for (Py_ssize_t i = 0; i < self->ndurations; i++)
        if (self->durations[i] >= l && self->durations[i] <= u)
            for (Py_ssize_t k = 0; k < nw; k++)
                mask[k] |= row(self, self->duration_rows[i])[k];
    and_words(mask, row(self, self->media[fmt]), nw);
    if (union_rows(self, tmp, mimes, self->mime, 0) < 0)
        goto done;
    and_words(mask, tmp, nw);
    if (fmt == F_VIDEO) {  /* audio has no size */
        if ((*w = attr(media, A_W)) == NULL || (*h = attr(media, A_H)) == NULL || or_zero(w) < 0 || or_zero(h) < 0)
            goto done;
    } else {
        no_size(w, h);
    }
    ok = 0;
done:
    Py_XDECREF(lo);
    Py_XDECREF(hi);
    return ok;
}

/* Whether the imp offers format ``fmt`` (1, with its lines in ``mask``, its size and its ``battr``, new
 * references), not (0), or -1 with an exception set. */
static int
offered(const ImpStep *self, PyObject *imp, int fmt, uint64_t *mask, uint64_t *tmp, PyObject **w, PyObject **h,
        PyObject **battr)
{
    static const int names[NFORMATS] = {A_BANNER, A_VIDEO, A_AUDIO, A_NATIVE};
    PyObject *media = attr(imp, names[fmt]), *v = NULL;
    int got = -1, t;
    if (media == NULL)
        return -1;
    if (media == Py_None) {
        got = 0;
        goto done;
    }
    if (fmt == F_BANNER) {
        if (banner_mask(self, media, mask, w, h) < 0)
            goto done;
    } else {
        /* a player without mimes (we cannot know what it plays) or a native without assets: not offered */
        if ((v = attr(media, fmt == F_NATIVE ? A_REQUEST : A_MIMES)) == NULL || (t = truth(v)) < 0)
            goto done;
        if (!t) {
            got = 0;
            goto done;
        }
        if (fmt == F_NATIVE) {
            memcpy(mask, row(self, self->media[F_NATIVE]), self->nwords * sizeof *mask);
            no_size(w, h);
        } else if (player_mask(self, media, v, fmt, mask, tmp, w, h) < 0) {
            goto done;
        }
    }
    if ((*battr = attr(media, A_BATTR)) != NULL)
        got = 1;
done:
    Py_DECREF(media);
    Py_XDECREF(v);
    if (got < 1) {
        Py_CLEAR(*w);
        Py_CLEAR(*h);
    }
    return got;
}

/* --- floor and price ------------------------------------------------------------------------------- */

/* ``impstep.floor_py``: 1 with ``*floor`` (new reference), 0 when the currency has no rate, -1 with an
 * exception set. */
static int
floor_of(const ImpStep *self, PyObject *rates, PyObject *amount, PyObject *currency, PyObject **floor)
{
    int t = truth(currency);
    if (t < 0)
        return -1;
    PyObject *rate = PyDict_GetItemWithError(rates, t ? currency : s_usd);
    if (rate == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (PyFloat_CheckExact(amount) && PyFloat_CheckExact(rate)) {
        double a = PyFloat_AS_DOUBLE(amount), r = PyFloat_AS_DOUBLE(rate);
        if (!(a > 0)) {  /* also NaN: no floor */
            *floor = Py_NewRef(zero);
            return 1;
        }
        double x = a / r * 1000000.0 - 1e-6;  /* the same operations as Python's, so the same double */
        if (r != 0 && !isnan(x)) {
            /* ``MAX_FLOOR`` from 2 ** 63 - 1 on (for doubles, from 2 ** 63); below, ``math.ceil`` of the float */
            *floor = x >= 0x1p63 ? PyLong_FromLongLong(LLONG_MAX) : PyLong_FromDouble(ceil(x));
            return *floor == NULL ? -1 : 1;
        }
    }
    /* anything else as Python does it, raising what it raises */
    PyObject *f = PyObject_CallFunctionObjArgs(self->floor_py, rates, amount, currency, NULL);
    if (f == NULL || f == Py_None) {
        Py_XDECREF(f);
        return f == NULL ? -1 : 0;
    }
    *floor = f;
    return 1;
}

/* ``stats.decisions[key] += 1`` */
static int
count(PyObject *engine, PyObject *key)
{
    PyObject *stats = attr(engine, A_STATS), *decisions = stats == NULL ? NULL : attr(stats, A_DECISIONS);
    int ok = decisions == NULL ? -1 : bump(decisions, key);
    Py_XDECREF(stats);
    Py_XDECREF(decisions);
    return ok;
}

/* Whether a buffer's struct format is ``code`` (native, or with an explicit byte order on this
 * little-endian machine), of 8 bytes. */
static int
format_is(const Py_buffer *b, const char *codes)
{
    const char *f = b->format;
    if (f != NULL && (*f == '<' || *f == '=' || *f == '@'))
        f++;
    return b->itemsize == 8 && f != NULL && f[0] != 0 && f[1] == 0 && strchr(codes, f[0]) != NULL;
}

/* ``engine._out`` as [bid, value]: its buffer is kept while it is the same array. */
static int
read_out(ImpStep *self, PyObject *out, long long *bid, long long *value)
{
    if (out != self->out) {
        if (self->out != NULL) {
            PyBuffer_Release(&self->out_view);
            Py_CLEAR(self->out);
        }
        if (PyObject_GetBuffer(out, &self->out_view, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0)
            return -1;
        if (self->out_view.len != 16 || !format_is(&self->out_view, "lq")) {
            PyBuffer_Release(&self->out_view);
            PyErr_SetString(PyExc_TypeError, "ImpStep: the engine's _out must be two int64");
            return -1;
        }
        self->out = Py_NewRef(out);
    }
    const int64_t *o = self->out_view.buf;
    *bid = o[0];
    *value = o[1];
    return 0;
}

/* ``value.prior_best`` over the price table's row ``context``: the line (ties: the lowest) and its bid and
 * value, or -1. The same operations as the numba kernel's, in the same order: the same integers. */
static Py_ssize_t
table_best(const ImpStep *self, const uint64_t *mask, Py_ssize_t context, long long floor, int first, double shade,
           long long *bid, long long *value)
{
    const double *v = (const double *)self->value.buf + context * self->nlines;
    const int64_t *cap = self->cap.buf;
    Py_ssize_t best = -1;
    long long best_bid = -1;
    for (Py_ssize_t i = 0; i < self->nwords; i++) {
        for (uint64_t w = mask[i]; w != 0; w &= w - 1) {
            Py_ssize_t line = i * 64 + __builtin_ctzll(w);
            if (line >= self->nlines)
                break;
            double x = v[line];
            if (!(x > 0.0))  /* also NaN */
                continue;
            long long c = cap[line], val = x >= (double)c ? c : (long long)(x + 0.5);
            if (val < floor || val <= 0)
                continue;
            long long b = val;
            if (first) {
                b = (long long)((double)val * shade + 0.5);
                if (b < floor)
                    b = floor;
            }
            if (b > best_bid) {
                best_bid = b;
                best = line;
                *value = val;
            }
        }
    }
    *bid = best_bid;
    return best;
}

/* The model's line among ``mask`` in context ``ctx`` (the price table's row ``context``), a new reference
 * to an int (-1 for none), with its bid and value when it was priced here from the table (``*here`` =
 * 1); or NULL with an exception set. */
static PyObject *
model_line(ImpStep *self, PyObject *engine, const uint64_t *mask, PyObject **bits, PyObject *floor,
           PyObject *first, PyObject *ctx, Py_ssize_t context, int *here, long long *bid, long long *value)
{
    PyObject *shade = attr(engine, A_SHADE), *kernel = NULL, *line = NULL;
    if (shade == NULL)
        return NULL;
    if (self->priced_here) {
        long long fl = PyLong_AsLongLong(floor);
        double sh = PyFloat_AsDouble(shade);
        int fp = PyObject_IsTrue(first);
        if (!PyErr_Occurred() && fp >= 0) {
            *here = 1;
            line = PyLong_FromSsize_t(table_best(self, mask, context, fl, fp, sh, bid, value));
        }
    } else if ((*bits = PyBytes_FromStringAndSize((const char *)mask, self->nbytes)) != NULL &&
               (kernel = attr(engine, A_BEST)) != NULL) {  /* the words are little-endian: ``to_bytes`` */
        if (kernel != Py_None) {
            PyObject *out = attr(engine, A_OUT);
            if (out != NULL) {
                PyObject *a[] = {*bits, ctx, floor, first, shade, out};
                line = PyObject_Vectorcall(kernel, a, 6, NULL);
                Py_DECREF(out);
            }
        } else {
            PyObject *index = attr(engine, A_INDEX);
            if (index != NULL)
                line = PyObject_CallMethodObjArgs(engine, interned[A_SCORED], index, *bits, floor, first, ctx, NULL);
            Py_XDECREF(index);
        }
    }
    Py_DECREF(shade);
    Py_XDECREF(kernel);
    return line;
}

/* ``impstep.price_py`` for the lines ``mask``: 0 with ``*choice`` (a new reference, NULL for None) and
 * its bid in ``*bid``, or -1 with an exception set. */
static int
price(ImpStep *self, PyObject *engine, const uint64_t *mask, PyObject *floor, PyObject *first, PyObject *ctx,
      Py_ssize_t context, PyObject *deal, PyObject **choice, long long *bid)
{
    *choice = NULL;
    if (!any_words(mask, self->nwords))
        return 0;
    PyObject *bits = NULL, *breaker = NULL, *token = NULL, *mono = NULL, *t0 = NULL, *t1 = NULL, *dt = NULL;
    PyObject *line = NULL, *r = NULL, *source = s_ai;
    long long value = 0;
    int ok = -1, here = 0, t;
    if ((breaker = attr(engine, A_BREAKER)) == NULL ||
        (token = PyObject_CallMethodNoArgs(breaker, interned[A_ALLOW])) == NULL || (t = truth(token)) < 0)
        goto done;
    if (t) {
        if ((mono = attr(engine, A_MONO)) == NULL || (t0 = PyObject_CallNoArgs(mono)) == NULL)
            goto done;
        line = model_line(self, engine, mask, &bits, floor, first, ctx, context, &here, bid, &value);
        if (line == NULL) {  /* a failing model is the breaker's business, not the exchange's */
            if (!PyErr_ExceptionMatches(PyExc_Exception))
                goto done;
            PyErr_Clear();
            here = 0;
            if ((r = PyObject_CallMethodOneArg(breaker, interned[A_RECORD_FAILURE], token)) == NULL)
                goto done;
        } else {
            if ((t1 = PyObject_CallNoArgs(mono)) == NULL || (dt = PyNumber_Subtract(t1, t0)) == NULL ||
                (r = PyObject_VectorcallMethod(interned[A_RECORD_SUCCESS], (PyObject *[]){breaker, token, dt}, 3,
                                               NULL)) == NULL ||
                count(engine, s_ai) < 0)
                goto done;
        }
    }
    if (line == NULL) {
        PyObject *index = attr(engine, A_INDEX);
        source = s_fallback;
        if (index == NULL ||
            (bits == NULL && (bits = PyBytes_FromStringAndSize((const char *)mask, self->nbytes)) == NULL) ||
            (line = PyObject_CallMethodObjArgs(engine, interned[A_FALLBACK], index, bits, floor, first, NULL)) ==
                NULL) {
            Py_XDECREF(index);
            goto done;
        }
        Py_DECREF(index);
    }
    long long l = PyLong_AsLongLong(line);
    if (l == -1 && PyErr_Occurred())
        goto done;
    if (l < 0) {
        ok = 0;
        goto done;
    }
    if (!here) {
        PyObject *out = attr(engine, A_OUT);
        int got = out == NULL ? -1 : read_out(self, out, bid, &value);
        Py_XDECREF(out);
        if (got < 0)
            goto done;
    }
    PyObject *b = PyLong_FromLongLong(*bid), *v = PyLong_FromLongLong(value);
    if (b != NULL && v != NULL) {
        PyObject *a[] = {b, v, line, deal, ctx, source};
        *choice = PyObject_Vectorcall(self->choice, a, 6, NULL);
    }
    Py_XDECREF(b);
    Py_XDECREF(v);
    if (*choice != NULL)
        ok = 0;
done:
    Py_XDECREF(bits);
    Py_XDECREF(breaker);
    Py_XDECREF(token);
    Py_XDECREF(mono);
    Py_XDECREF(t0);
    Py_XDECREF(t1);
    Py_XDECREF(dt);
    Py_XDECREF(line);
    Py_XDECREF(r);
    return ok;
}

/* --- the step -------------------------------------------------------------------------------------- */

typedef struct {
    PyObject *best;  /* the best choice so far, or NULL */
    long long bid;
    PyObject *why;   /* borrowed: one of the s_* reasons */
} Best;

/* Keeps ``got`` (stolen) when it bids more than the best so far. */
static void
consider(Best *best, PyObject *got, long long bid)
{
    if (best->best == NULL || bid > best->bid) {
        Py_XSETREF(best->best, got);
        best->bid = bid;
    } else {
        Py_DECREF(got);
    }
}

/* The imp's deals over the lines ``mm`` of one format, priced in context ``c``; ``dm`` and ``tmp`` are
 * scratch. */
static int
price_deals(ImpStep *self, PyObject *engine, PyObject *req, PyObject *rates, PyObject *deals, const uint64_t *mm,
            uint64_t *dm, uint64_t *tmp, PyObject *c, Py_ssize_t context, Best *best)
{
    Py_ssize_t nw = self->nwords;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(deals); i++) {
        PyObject *deal = PyList_GET_ITEM(deals, i), *id, *list = NULL, *floor = NULL, *at = NULL, *got;
        int ok = -1, t;
        long long bid;
        if ((id = attr(deal, A_ID)) == NULL)
            return -1;
        memcpy(dm, mm, nw * sizeof *dm);
        if (and_row_of(self, dm, self->deal, id) < 0)
            goto next;
        static const struct { int name, how; } allow[] = {{A_WSEAT, -1}, {A_WADOMAIN, 0}};
        PyObject *tables[] = {self->seat, self->advertiser};
        for (int k = 0; k < 2; k++) {
            if ((list = attr(deal, allow[k].name)) == NULL || (t = truth(list)) < 0)
                goto next;
            if (t) {
                if (union_rows(self, tmp, list, tables[k], allow[k].how) < 0)
                    goto next;
                and_words(dm, tmp, nw);
            }
            Py_CLEAR(list);
        }
        if (!any_words(dm, nw)) {
            ok = 0;
            goto next;
        }
        PyObject *amount = attr(deal, A_BIDFLOOR), *currency = amount ? attr(deal, A_BIDFLOORCUR) : NULL;
        t = currency == NULL ? -1 : floor_of(self, rates, amount, currency, &floor);
        Py_XDECREF(amount);
        Py_XDECREF(currency);
        if (t <= 0) {
            if (t == 0)
                best->why = s_currency;
            ok = t;
            goto next;
        }
        if ((at = attr(deal, A_AT)) == NULL || (t = truth(at)) < 0)
            goto next;
        if (!t) {  /* ``deal.at or req.at`` */
            Py_SETREF(at, attr(req, A_AT));
            if (at == NULL)
                goto next;
        }
        if (price(self, engine, dm, floor, is_int(at, 1) ? Py_True : Py_False, c, context, id, &got, &bid) < 0)
            goto next;
        if (got != NULL) {
            if (is_int(at, 3)) {  /* fixed-price deal: the price is the floor */
                if ((bid = PyLong_AsLongLong(floor)) == -1 && PyErr_Occurred()) {
                    Py_DECREF(got);
                    goto next;
                }
                if (PyObject_SetAttrString(got, "bid", floor) < 0) {
                    Py_DECREF(got);
                    goto next;
                }
            }
            consider(best, got, bid);
        } else if (best->why == s_no_match) {
            best->why = s_below_floor;
        }
        ok = 0;
next:
        Py_DECREF(id);
        Py_XDECREF(list);
        Py_XDECREF(floor);
        Py_XDECREF(at);
        if (ok < 0)
            return -1;
    }
    return 0;
}

/* best(engine, req, imp, m, ctx) -> (Choice | None, why): see ``bidder.impstep.imp_best_py``. */
static PyObject *
ImpStep_best(ImpStep *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "ImpStep.best takes 5 arguments (%zd given)", nargs);
        return NULL;
    }
    if (!self->ready) {
        PyErr_SetString(PyExc_ValueError, "ImpStep was never initialised");
        return NULL;
    }
    PyObject *engine = args[0], *req = args[1], *imp = args[2], *ctx = args[4];
    Py_ssize_t nw = self->nwords;
    uint64_t stack[5 * STACK_WORDS];
    uint64_t *m = nw <= STACK_WORDS ? stack : PyMem_Malloc(5 * nw * sizeof *m);
    if (m == NULL)
        return PyErr_NoMemory();
    uint64_t *mm = m + nw, *dm = mm + nw, *tmp = dm + nw, *mask = tmp + nw;
    PyObject *rates = NULL, *pmp = NULL, *deals = NULL, *open_floor = NULL, *first = NULL, *result = NULL;
    PyObject *w = NULL, *h = NULL, *battr = NULL, *c = NULL, *got = NULL;
    Best best = {NULL, 0, s_no_match};
    Py_ssize_t device = 0;  /* the price table's device type: 0 (unknown) for any outside it */
    int private = 0, t;

    if (words_of(args[3], m, nw) < 0 || (rates = attr(engine, A_RATES)) == NULL || (pmp = attr(imp, A_PMP)) == NULL)
        goto done;
    if (self->priced_here) {
        PyObject *d = attr(ctx, A_DEVICE_TYPE);
        int overflow;
        long long v = d == NULL ? -1 : PyLong_AsLongLongAndOverflow(d, &overflow);
        Py_XDECREF(d);
        if (v == -1 && PyErr_Occurred())
            goto done;
        if (!overflow && v >= 0 && v < N_DEVICE_TYPES)
            device = (Py_ssize_t)v;
    }
    if (!PyDict_Check(rates)) {
        PyErr_SetString(PyExc_TypeError, "ImpStep: the engine's rates must be a dict");
        goto done;
    }
    if (pmp != Py_None) {
        PyObject *pa = attr(pmp, A_PRIVATE_AUCTION);
        if (pa == NULL || (deals = attr(pmp, A_DEALS)) == NULL || (t = truth(deals)) < 0) {
            Py_XDECREF(pa);
            goto done;
        }
        private = is_int(pa, 1);
        Py_DECREF(pa);
        if (!t)
            Py_CLEAR(deals);
        else if (!PyList_Check(deals)) {
            PyErr_SetString(PyExc_TypeError, "ImpStep: pmp.deals must be a list");
            goto done;
        }
    }
    if (!private) {
        PyObject *amount = attr(imp, A_BIDFLOOR), *currency = amount ? attr(imp, A_BIDFLOORCUR) : NULL;
        t = currency == NULL ? -1 : floor_of(self, rates, amount, currency, &open_floor);
        Py_XDECREF(amount);
        Py_XDECREF(currency);
        if (t < 0)
            goto done;
        PyObject *at = attr(req, A_AT);
        if (at == NULL)
            goto done;
        first = Py_NewRef(is_int(at, 1) ? Py_True : Py_False);
        Py_DECREF(at);
    }
    for (int fmt = 0; fmt < NFORMATS; fmt++) {
        if ((t = offered(self, imp, fmt, mask, tmp, &w, &h, &battr)) < 0)
            goto done;
        if (t == 0)
            continue;
        memcpy(mm, m, nw * sizeof *mm);
        and_words(mm, mask, nw);
        if ((t = truth(battr)) < 0)
            goto done;
        if (t) {
            if (union_rows(self, tmp, battr, self->attr, -1) < 0)
                goto done;
            and_not_words(mm, tmp, nw);
        }
        if (!any_words(mm, nw))
            goto next;
        Py_ssize_t context = fmt * N_DEVICE_TYPES + device;
        PyObject *f = PyLong_FromLong(fmt);
        if (f == NULL)
            goto done;
        PyObject *a[] = {ctx, f, w, h};
        c = PyObject_Vectorcall(self->replace, a, 1, kw_replace);
        Py_DECREF(f);
        if (c == NULL)
            goto done;
        if (!private) {
            if (open_floor == NULL) {
                best.why = s_currency;
            } else {
                long long bid;
                memcpy(dm, mm, nw * sizeof *dm);
                and_words(dm, row(self, self->open), nw);
                if (price(self, engine, dm, open_floor, first, c, context, Py_None, &got, &bid) < 0)
                    goto done;
                if (got != NULL)
                    consider(&best, got, bid);
                else if (best.why == s_no_match && any_words(dm, nw))
                    best.why = s_below_floor;
                got = NULL;
            }
        }
        if (deals != NULL && price_deals(self, engine, req, rates, deals, mm, dm, tmp, c, context, &best) < 0)
            goto done;
    next:
        Py_CLEAR(w);
        Py_CLEAR(h);
        Py_CLEAR(battr);
        Py_CLEAR(c);
    }
    if (best.best == NULL && private && best.why == s_no_match)
        best.why = s_private_auction;
    result = PyTuple_Pack(2, best.best ? best.best : Py_None, best.why);
done:
    if (m != stack)
        PyMem_Free(m);
    Py_XDECREF(best.best);
    Py_XDECREF(rates);
    Py_XDECREF(pmp);
    Py_XDECREF(deals);
    Py_XDECREF(open_floor);
    Py_XDECREF(first);
    Py_XDECREF(w);
    Py_XDECREF(h);
    Py_XDECREF(battr);
    Py_XDECREF(c);
    return result;
}

/* --- construction ---------------------------------------------------------------------------------- */

enum { T_WORDS, T_NWORDS, T_NBYTES, T_OPEN, T_MEDIA, T_BANNER_SIZE, T_MIME, T_DURATIONS, T_ATTR, T_DEAL, T_SEAT,
       T_ADVERTISER, T_N };

static int
strings_ready(void)
{
    if (s_ai != NULL)
        return 0;
    PyObject **s[] = {&s_ai, &s_fallback, &s_usd, &s_no_match, &s_currency, &s_below_floor, &s_private_auction};
    const char *text[] = {"ai", "fallback", "USD", "no_match", "currency", "below_floor", "private_auction"};
    for (size_t i = 0; i < sizeof s / sizeof *s; i++)
        if ((*s[i] = PyUnicode_InternFromString(text[i])) == NULL)
            return -1;
    kw_replace = Py_BuildValue("(sss)", "fmt", "w", "h");
    return kw_replace == NULL ? -1 : 0;
}

/* The scorer's ``value.PriceTable`` (value, cap): held as buffers, checked against what it must be. */
static int
load_price_table(ImpStep *self, PyObject *table)
{
    if (!PyTuple_Check(table) || PyTuple_GET_SIZE(table) != 2) {
        PyErr_SetString(PyExc_TypeError, "ImpStep: price_table must be None or (value, cap)");
        return -1;
    }
    if (PyObject_GetBuffer(PyTuple_GET_ITEM(table, 0), &self->value, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    if (PyObject_GetBuffer(PyTuple_GET_ITEM(table, 1), &self->cap, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&self->value);
        return -1;
    }
    self->priced_here = 1;  /* from here on, the views are released with the step */
    if (self->value.ndim != 2 || !format_is(&self->value, "d") || self->value.shape[0] != NFORMATS * N_DEVICE_TYPES ||
        self->cap.ndim != 1 || !format_is(&self->cap, "lq") || self->cap.shape[0] != self->value.shape[1]) {
        PyErr_Format(PyExc_ValueError, "ImpStep: price_table must be float64 (%d, lines) and int64 (lines,)",
                     NFORMATS * N_DEVICE_TYPES);
        return -1;
    }
    self->nlines = self->cap.shape[0];
    return 0;
}

static int
ImpStep_init(ImpStep *self, PyObject *args, PyObject *kwds)
{
    PyObject *t, *floor_py, *choice, *replace, *table = Py_None;
    if (self->rows != NULL) {
        PyErr_SetString(PyExc_TypeError, "ImpStep is already initialised");
        return -1;
    }
    if ((kwds != NULL && PyDict_GET_SIZE(kwds)) ||
        !PyArg_ParseTuple(args, "O!OOO|O:ImpStep", &PyTuple_Type, &t, &floor_py, &choice, &replace, &table)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "ImpStep takes positional arguments only");
        return -1;
    }
    if (strings_ready() < 0)
        return -1;
    if (PyTuple_GET_SIZE(t) != T_N) {
        PyErr_Format(PyExc_ValueError, "ImpStep: tables must have %d fields, got %zd", T_N, PyTuple_GET_SIZE(t));
        return -1;
    }
    if ((self->rows = load_rows("ImpStep", PyTuple_GET_ITEM(t, T_WORDS), PyTuple_GET_ITEM(t, T_NWORDS),
                                &self->nwords, &self->nrows)) == NULL)
        return -1;
    PyObject *nbytes = PyTuple_GET_ITEM(t, T_NBYTES);
    self->nbytes = PyLong_Check(nbytes) ? PyLong_AsSsize_t(nbytes) : -1;
    if (self->nbytes < 1 || self->nbytes > self->nwords * 8) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "ImpStep: nbytes must be 1 to %zd, the bytes of a row", self->nwords * 8);
        return -1;
    }
    if ((self->open = checked_row("ImpStep", self->nrows, PyTuple_GET_ITEM(t, T_OPEN), "open")) < 0)
        return -1;
    PyObject *media = PyTuple_GET_ITEM(t, T_MEDIA);
    if (!PyTuple_Check(media) || PyTuple_GET_SIZE(media) != NFORMATS) {
        PyErr_Format(PyExc_TypeError, "ImpStep: media must be a row per format (%d)", NFORMATS);
        return -1;
    }
    for (int f = 0; f < NFORMATS; f++)
        if ((self->media[f] = checked_row("ImpStep", self->nrows, PyTuple_GET_ITEM(media, f), "media")) < 0)
            return -1;
    PyObject *durations = PyTuple_GET_ITEM(t, T_DURATIONS);
    if (!PyTuple_Check(durations)) {
        PyErr_SetString(PyExc_TypeError, "ImpStep: durations must be a tuple of (duration, row)");
        return -1;
    }
    Py_ssize_t n = self->ndurations = PyTuple_GET_SIZE(durations);
    self->durations = PyMem_Malloc((n + 1) * sizeof *self->durations);
    self->duration_rows = PyMem_Malloc((n + 1) * sizeof *self->duration_rows);
    if (self->durations == NULL || self->duration_rows == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p = PyTuple_GET_ITEM(durations, i);
        if (!PyTuple_Check(p) || PyTuple_GET_SIZE(p) != 2 || !PyLong_Check(PyTuple_GET_ITEM(p, 0))) {
            PyErr_SetString(PyExc_TypeError, "ImpStep: durations must be a tuple of (duration, row)");
            return -1;
        }
        if ((self->durations[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(p, 0))) == -1 && PyErr_Occurred())
            return -1;
        if ((self->duration_rows[i] = checked_row("ImpStep", self->nrows, PyTuple_GET_ITEM(p, 1), "durations")) < 0)
            return -1;
    }
    static const int fields[] = {T_BANNER_SIZE, T_MIME, T_ATTR, T_DEAL, T_SEAT, T_ADVERTISER};
    static const char *const names[] = {"banner_size", "mime", "attr", "deal", "seat", "advertiser"};
    PyObject **tables[] = {&self->banner_size, &self->mime, &self->attr, &self->deal, &self->seat, &self->advertiser};
    for (int i = 0; i < 6; i++) {
        PyObject *d = PyTuple_GET_ITEM(t, fields[i]);
        if (checked_table("ImpStep", self->nrows, d, names[i]) < 0)
            return -1;
        *tables[i] = Py_NewRef(d);
    }
    if (table != Py_None && load_price_table(self, table) < 0)
        return -1;
    self->floor_py = Py_NewRef(floor_py);
    self->choice = Py_NewRef(choice);
    self->replace = Py_NewRef(replace);
    self->ready = 1;
    return 0;
}

static void
ImpStep_dealloc(ImpStep *self)
{
    if (self->out != NULL) {
        PyBuffer_Release(&self->out_view);
        Py_DECREF(self->out);
    }
    if (self->priced_here) {
        PyBuffer_Release(&self->value);
        PyBuffer_Release(&self->cap);
    }
    PyMem_Free(self->rows);
    PyMem_Free(self->durations);
    PyMem_Free(self->duration_rows);
    Py_XDECREF(self->banner_size);
    Py_XDECREF(self->mime);
    Py_XDECREF(self->attr);
    Py_XDECREF(self->deal);
    Py_XDECREF(self->seat);
    Py_XDECREF(self->advertiser);
    Py_XDECREF(self->floor_py);
    Py_XDECREF(self->choice);
    Py_XDECREF(self->replace);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef ImpStep_methods[] = {
    {"best", (PyCFunction)(void (*)(void))ImpStep_best, METH_FASTCALL,
     "best(engine, req, imp, m, ctx) -> (Choice | None, why): the imp's best priced line among ``m``."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject ImpStepType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "bidder._native.ImpStep",
    .tp_basicsize = sizeof(ImpStep),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "ImpStep(tables, floor_py, Choice, replace, price_table=None): the imp step over the index's rows.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)ImpStep_init,
    .tp_dealloc = (destructor)ImpStep_dealloc,
    .tp_methods = ImpStep_methods,
};
