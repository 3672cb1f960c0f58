/* The request-level mask in C: the lines a request's own signals allow, and the model context they give.
 *
 * ``bidder.targeting.request_mask_py`` is its Python twin, over the index's ``int`` bitsets; the tests
 * compare the two. Here the same bitsets are rows of 64-bit words (``targeting.tables``, built once per
 * campaign load), and a request ANDs a handful of rows into one buffer on the stack: no Python int is
 * made until the result. What Python computes per request and this reads the same way: the request's
 * attributes, ``str.upper``/``lower`` (done here for ASCII text), the local hour (CPython's float floor
 * division, reproduced), and the ``privacy`` function when the request carries privacy signals. The
 * inventory and category lookups go through the index's own methods once per distinct key, then through
 * a memo of their rows.
 */
#include "_native.h"
#include <math.h>

#define NDIMS 4           /* country, region, device type, OS: in ``Tables`` order */
#define MEMO_SIZE 65536   /* as ``index.remember``: cleared when full */

typedef struct {
    PyObject_HEAD
    int ready;            /* 0 until __init__ succeeded */
    uint64_t *rows;       /* nrows x nwords */
    Py_ssize_t nrows, nwords;
    PyObject *dim[NDIMS]; /* value -> row of ``any | by[value]``; NULL when the dimension is not constrained */
    Py_ssize_t dim_any[NDIMS];
    int hourly;
    Py_ssize_t hours[24];
    Py_ssize_t no_inventory;
    int categories;
    PyObject *creative_cat, *advertiser, *advertised_app, *seat;  /* value -> row */
    PyObject *index, *context, *privacy;
    PyObject *inventories;   /* domain, or (domain, bundle) for an app -> (row as bytes, inventory key) */
    PyObject *category_rows; /* category, or tuple of them -> row as bytes */
    PyObject *live;         /* the ``live`` int that ``live_words`` hold */
    uint64_t *live_words;
} RequestMask;

static inline const uint64_t *
row(const RequestMask *self, Py_ssize_t r)
{
    return self->rows + r * self->nwords;
}

/* ``bits`` (a non-negative int below 2 ** (64 * nwords)) as the bytes of a row. */
static PyObject *
row_bytes(const RequestMask *self, PyObject *bits)
{
    if (!PyLong_Check(bits)) {
        PyErr_Format(PyExc_TypeError, "RequestMask: the index gave a %.100s, not an int bitset",
                     Py_TYPE(bits)->tp_name);
        return NULL;
    }
    PyObject *b = PyBytes_FromStringAndSize(NULL, self->nwords * 8);
    if (b != NULL && AS_BYTES(bits, (unsigned char *)PyBytes_AS_STRING(b), self->nwords * 8) < 0)
        Py_CLEAR(b);
    return b;
}

static int
remember(PyObject *memo, PyObject *key, PyObject *value)
{
    if (PyDict_GET_SIZE(memo) >= MEMO_SIZE)
        PyDict_Clear(memo);
    return PyDict_SetItem(memo, key, value);
}

/* AND into ``m`` the complement of each row ``table[v]`` for the values of ``list`` (None: nothing), or
 * for an ``allow`` list their union (gathered in ``tmp``). ``how``: 1 upper-cases the values, 0
 * lower-cases them, -1 takes them as they are. */
static int
apply_list(const RequestMask *self, uint64_t *m, uint64_t *tmp, PyObject *list, PyObject *table, int how,
           int allow)
{
    Py_ssize_t nw = self->nwords;
    if (!truth(list))
        return PyErr_Occurred() ? -1 : 0;
    if (!PyList_Check(list)) {
        PyErr_Format(PyExc_TypeError, "RequestMask: expected a list, got %.100s", Py_TYPE(list)->tp_name);
        return -1;
    }
    if (allow)
        memset(tmp, 0, nw * sizeof *tmp);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        PyObject *v = PyList_GET_ITEM(list, i);
        PyObject *key = how < 0 ? Py_NewRef(v) : recase(v, how);
        if (key == NULL)
            return -1;
        Py_ssize_t r = row_of(table, key);
        Py_DECREF(key);
        if (r == -2)
            return -1;
        if (r < 0)
            continue;
        const uint64_t *w = row(self, r);
        if (allow)
            for (Py_ssize_t k = 0; k < nw; k++)
                tmp[k] |= w[k];
        else
            and_not_words(m, w, nw);
    }
    if (allow)
        and_words(m, tmp, nw);
    return 0;
}

/* CPython's float floor division (``float_floor_div``), for the same local hour to the bit. */
static double
floor_div(double vx, double wx)
{
    double mod = fmod(vx, wx), div = (vx - mod) / wx, fd;
    if (mod && ((wx < 0) != (mod < 0)))
        div -= 1.0;
    if (div) {
        fd = floor(div);
        if (div - fd > 0.5)
            fd += 1.0;
    } else {
        fd = copysign(0.0, vx / wx);
    }
    return fd;
}

/* ``int(local // unit) % m``, as Python computes it for a float ``local``. */
static long
calendar(double local, long unit, long m)
{
    if (fabs(local) < 0x1p52) {  /* floor(local / unit) is floor(floor(local) / unit): integers, exactly */
        long long t = (long long)floor(local), q = t / unit - (t % unit < 0), r = q % m;
        return (long)(r < 0 ? r + m : r);
    }
    double r = fmod(floor_div(local, (double)unit), (double)m);  /* fmod of integral doubles is exact */
    return (long)(r < 0 ? r + m : r);
}

/* ``now + offset * 60`` as Python computes it. */
static int
local_time(PyObject *now, PyObject *offset, double *out)
{
    double t = PyFloat_AsDouble(now);
    if (t == -1.0 && PyErr_Occurred())
        return -1;
    if (offset == NULL) {
        *out = t;
        return 0;
    }
    int overflow;
    long long o = PyLong_AsLongLongAndOverflow(offset, &overflow);
    if (o == -1 && PyErr_Occurred())
        return -1;
    if (!overflow && o > -(1LL << 40) && o < (1LL << 40)) {  /* o * 60 is exact as a double */
        *out = t + (double)(o * 60);
        return 0;
    }
    PyObject *sixty = PyLong_FromLong(60), *minutes = NULL, *local = NULL;
    if (sixty != NULL && (minutes = PyNumber_Multiply(offset, sixty)) != NULL)
        local = PyNumber_Add(now, minutes);
    Py_XDECREF(sixty);
    Py_XDECREF(minutes);
    if (local == NULL)
        return -1;
    *out = PyFloat_AsDouble(local);
    Py_DECREF(local);
    return *out == -1.0 && PyErr_Occurred() ? -1 : 0;
}

/* The user id the models may see: as ``request_mask_py`` (``privacy`` decides when the request carries
 * a privacy signal). */
static PyObject *
user_id(const RequestMask *self, PyObject *req, PyObject *user)
{
    PyObject *regs = NULL, *ext = NULL, *p = NULL, *may = NULL, *eids = NULL, *result = NULL;
    int t;
    if ((regs = attr(req, A_REGS)) == NULL)
        goto done;
    if (regs != Py_None || (ext = attr(user, A_EXT)) == NULL || (t = truth(ext)) != 0) {
        if (PyErr_Occurred())
            goto done;
        if ((p = PyObject_CallOneArg(self->privacy, req)) == NULL || (may = attr(p, A_MAY_USE)) == NULL ||
            (t = truth(may)) < 0)
            goto done;
        if (!t) {
            result = Py_NewRef(empty);
            goto done;
        }
    }
    /* ``user.buyeruid or user.id``, else (with privacy's word) ``p.eids[0][1] if p.eids else ""`` */
    for (int name = A_BUYERUID; ; name = A_ID) {
        PyObject *v = attr(user, name);
        if (v == NULL || (t = truth(v)) < 0) {
            Py_XDECREF(v);
            goto done;
        }
        if (t) {
            result = v;
            goto done;
        }
        Py_DECREF(v);
        if (name == A_ID)
            break;
    }
    if (p == NULL || (eids = attr(p, A_EIDS)) == NULL || (t = truth(eids)) == 0) {
        result = PyErr_Occurred() ? NULL : Py_NewRef(empty);
        goto done;
    }
    if (t > 0) {
        PyObject *first = PySequence_GetItem(eids, 0);
        if (first != NULL)
            result = PySequence_GetItem(first, 1);
        Py_XDECREF(first);
    }
done:
    Py_XDECREF(regs);
    Py_XDECREF(ext);
    Py_XDECREF(p);
    Py_XDECREF(may);
    Py_XDECREF(eids);
    return result;
}

/* The categories a site or app lists, as the memo's key: ``tuple(cat + sectioncat + pagecat)``. */
static PyObject *
category_key(PyObject *inv)
{
    PyObject *lists[3] = {NULL, NULL, NULL}, *key = NULL;
    Py_ssize_t n = 0;
    for (int i = 0; i < 3; i++) {
        if ((lists[i] = attr(inv, A_CAT + i)) == NULL)
            goto done;
        if (lists[i] == Py_None)
            continue;
        if (!PyList_Check(lists[i])) {
            PyErr_Format(PyExc_TypeError, "RequestMask: %s is a %.100s, not a list", attr_names[A_CAT + i],
                         Py_TYPE(lists[i])->tp_name);
            goto done;
        }
        n += PyList_GET_SIZE(lists[i]);
    }
    if ((key = PyTuple_New(n)) == NULL)
        goto done;
    n = 0;
    for (int i = 0; i < 3; i++)
        if (lists[i] != Py_None)
            for (Py_ssize_t k = 0; k < PyList_GET_SIZE(lists[i]); k++)
                PyTuple_SET_ITEM(key, n++, Py_NewRef(PyList_GET_ITEM(lists[i], k)));
done:
    for (int i = 0; i < 3; i++)
        Py_XDECREF(lists[i]);
    return key;
}

/* The site's or app's rows (inventory, categories) into ``m``; its inventory key and publisher id into
 * ``*inventory`` and ``*publisher`` (new references). */
static int
apply_inventory(RequestMask *self, uint64_t *m, PyObject *inv, PyObject *app, PyObject **inventory,
                PyObject **publisher)
{
    PyObject *bundle = NULL, *domain = NULL, *pub = NULL, *key = NULL, *got = NULL, *words = NULL;
    int ok = -1, t;
    if (app == Py_None)
        bundle = Py_NewRef(Py_None);
    else if ((bundle = attr(app, A_BUNDLE)) == NULL)
        goto done;
    if ((domain = attr(inv, A_DOMAIN)) == NULL || (pub = attr(inv, A_PUBLISHER)) == NULL)
        goto done;
    if ((t = truth(domain)) < 0)
        goto done;
    if (!t) {
        Py_SETREF(domain, pub == Py_None ? Py_NewRef(Py_None) : attr(pub, A_DOMAIN));
        if (domain == NULL)
            goto done;
    }
    /* A site's key is its domain alone: no tuple to build, hash and compare (a str never equals a tuple). */
    key = bundle == Py_None ? Py_NewRef(domain) : PyTuple_Pack(2, domain, bundle);
    if (key == NULL)
        goto done;
    got = PyDict_GetItemWithError(self->inventories, key);
    if (got != NULL) {
        Py_INCREF(got);
    } else {
        PyObject *r;
        if (PyErr_Occurred() ||
            (r = PyObject_CallMethodObjArgs(self->index, interned[A_INVENTORY], domain, bundle, NULL)) == NULL)
            goto done;
        if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 2 || !PyUnicode_Check(PyTuple_GET_ITEM(r, 1))) {
            PyErr_SetString(PyExc_TypeError, "RequestMask: index.inventory must give (int, str)");
            Py_DECREF(r);
            goto done;
        }
        words = row_bytes(self, PyTuple_GET_ITEM(r, 0));
        if (words != NULL)
            got = PyTuple_Pack(2, words, PyTuple_GET_ITEM(r, 1));
        Py_DECREF(r);
        if (got == NULL || remember(self->inventories, key, got) < 0)
            goto done;
    }
    and_words(m, (const uint64_t *)PyBytes_AS_STRING(PyTuple_GET_ITEM(got, 0)), self->nwords);
    *inventory = Py_NewRef(PyTuple_GET_ITEM(got, 1));

    if (self->categories) {
        PyObject *cats = category_key(inv), *bits;
        if (cats == NULL)
            goto done;
        /* One category, the common case, is its own key, as the domain above. */
        PyObject *memo_key = PyTuple_GET_SIZE(cats) == 1 ? PyTuple_GET_ITEM(cats, 0) : cats;
        bits = PyDict_GetItemWithError(self->category_rows, memo_key);
        if (bits != NULL) {
            Py_INCREF(bits);
        } else if (!PyErr_Occurred() &&
                   (bits = PyObject_CallMethodOneArg(self->index, interned[A_CATEGORIES], cats)) != NULL) {
            Py_SETREF(bits, row_bytes(self, bits));
            if (bits != NULL && remember(self->category_rows, memo_key, bits) < 0)
                Py_CLEAR(bits);
        }
        Py_DECREF(cats);
        if (bits == NULL)
            goto done;
        and_words(m, (const uint64_t *)PyBytes_AS_STRING(bits), self->nwords);
        Py_DECREF(bits);
    }

    *publisher = NULL;
    if ((t = truth(pub)) < 0)
        goto done;
    if (t) {
        PyObject *id = attr(pub, A_ID);
        if (id == NULL || (t = truth(id)) < 0) {
            Py_XDECREF(id);
            goto done;
        }
        if (t)
            *publisher = id;
        else
            Py_DECREF(id);
    }
    ok = 0;
done:
    Py_XDECREF(bundle);
    Py_XDECREF(domain);
    Py_XDECREF(pub);
    Py_XDECREF(key);
    Py_XDECREF(got);
    Py_XDECREF(words);
    if (ok < 0)
        Py_CLEAR(*inventory);
    return ok;
}

/* of(req, now, live) -> (mask, Context): see ``bidder.targeting.request_mask_py``. */
static PyObject *
RequestMask_of(RequestMask *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "RequestMask.of takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    if (!self->ready) {
        PyErr_SetString(PyExc_ValueError, "RequestMask was never initialised");
        return NULL;
    }
    PyObject *req = args[0], *now = args[1], *live = args[2];
    Py_ssize_t nw = self->nwords;
    uint64_t stack[2 * STACK_WORDS];
    uint64_t *m = nw <= STACK_WORDS ? stack : PyMem_Malloc(2 * nw * sizeof *m);
    if (m == NULL)
        return PyErr_NoMemory();
    uint64_t *tmp = m + nw;
    PyObject *dev = NULL, *user = NULL, *geo = NULL, *keys[NDIMS] = {NULL};
    PyObject *offset = NULL, *site = NULL, *app = NULL, *inventory = NULL, *publisher = NULL, *uid = NULL;
    PyObject *list = NULL, *how = NULL, *mask = NULL, *ctx = NULL, *result = NULL;

    if (live != self->live) {
        if (!PyLong_Check(live)) {
            PyErr_Format(PyExc_TypeError, "RequestMask.of: live must be an int, not %.100s", Py_TYPE(live)->tp_name);
            goto done;
        }
        Py_CLEAR(self->live);  /* until the words below are whole */
        if (AS_BYTES(live, (unsigned char *)self->live_words, nw * 8) < 0)
            goto done;
        self->live = Py_NewRef(live);
    }
    memcpy(m, self->live_words, nw * sizeof *m);

    for (int i = 0; i < NDIMS; i++)
        keys[i] = i == 2 ? Py_NewRef(zero) : Py_NewRef(empty);
    if ((dev = attr(req, A_DEVICE)) == NULL || (user = attr(req, A_USER)) == NULL)
        goto done;
    geo = dev != Py_None ? attr(dev, A_GEO) : Py_NewRef(Py_None);
    if (geo == NULL)
        goto done;
    if (geo == Py_None && user != Py_None) {
        Py_SETREF(geo, attr(user, A_GEO));
        if (geo == NULL)
            goto done;
    }
    if (geo != Py_None) {
        for (int i = 0; i < 2; i++) {  /* country, region: upper-cased */
            PyObject *v = attr(geo, A_COUNTRY + i);
            int t = v == NULL ? -1 : truth(v);
            if (t > 0)
                Py_SETREF(keys[i], recase(v, 1));
            Py_XDECREF(v);
            if (t < 0 || keys[i] == NULL)
                goto done;
        }
        if ((offset = attr(geo, A_UTCOFFSET)) == NULL)
            goto done;
        if (offset == Py_None)
            Py_CLEAR(offset);
    }
    if (dev != Py_None) {
        PyObject *v = attr(dev, A_DEVICETYPE);
        int t = v == NULL ? -1 : truth(v);
        if (t > 0)
            Py_SETREF(keys[2], Py_NewRef(v));
        Py_XDECREF(v);
        if (t < 0 || (v = attr(dev, A_OS)) == NULL)
            goto done;
        t = truth(v);
        if (t > 0)
            Py_SETREF(keys[3], recase(v, 0));
        Py_DECREF(v);
        if (t < 0 || keys[3] == NULL)
            goto done;
    }
    for (int i = 0; i < NDIMS; i++) {
        if (self->dim[i] == NULL)
            continue;
        Py_ssize_t r = row_of(self->dim[i], keys[i]);
        if (r == -2)
            goto done;
        and_words(m, row(self, r < 0 ? self->dim_any[i] : r), nw);
    }
    double local;
    if (local_time(now, offset, &local) < 0)
        goto done;
    long hour = calendar(local, 3600, 24);
    if (self->hourly)
        and_words(m, row(self, self->hours[hour]), nw);

    if ((site = attr(req, A_SITE)) == NULL || (app = attr(req, A_APP)) == NULL)
        goto done;
    PyObject *inv = site != Py_None ? site : app;
    if (inv != Py_None) {
        if (apply_inventory(self, m, inv, app, &inventory, &publisher) < 0)
            goto done;
    } else {
        and_words(m, row(self, self->no_inventory), nw);
    }
    static const struct { int name, how, allow; } lists[] = {
        {A_BCAT, 1, 0}, {A_BADV, 0, 0}, {A_BAPP, 0, 0}, {A_WSEAT, -1, 1}, {A_BSEAT, -1, 0},
    };
    PyObject *tables[] = {self->creative_cat, self->advertiser, self->advertised_app, self->seat, self->seat};
    for (int i = 0; i < 5; i++) {
        if ((list = attr(req, lists[i].name)) == NULL ||
            apply_list(self, m, tmp, list, tables[i], lists[i].how, lists[i].allow) < 0)
            goto done;
        Py_CLEAR(list);
    }

    uid = any_words(m, nw) && user != Py_None ? user_id(self, req, user) : Py_NewRef(empty);
    if (uid == NULL)
        goto done;
    long weekday = (calendar(local, 86400, 7) + 3) % 7;  /* 1970-01-01 was a Thursday */
    if ((how = PyLong_FromLong(weekday * 24 + hour)) == NULL)
        goto done;
    PyObject *fields[] = {zero, keys[2], keys[3], keys[0], keys[1], inventory ? inventory : empty,
                          publisher ? publisher : empty, how, zero, zero, uid};
    if ((ctx = PyObject_Vectorcall(self->context, fields, 11, NULL)) == NULL ||
        (mask = int_of(m, nw)) == NULL)
        goto done;
    result = PyTuple_Pack(2, mask, ctx);
done:
    if (m != stack)
        PyMem_Free(m);
    for (int i = 0; i < NDIMS; i++)
        Py_XDECREF(keys[i]);
    Py_XDECREF(dev);
    Py_XDECREF(user);
    Py_XDECREF(geo);
    Py_XDECREF(offset);
    Py_XDECREF(site);
    Py_XDECREF(app);
    Py_XDECREF(inventory);
    Py_XDECREF(publisher);
    Py_XDECREF(uid);
    Py_XDECREF(list);
    Py_XDECREF(how);
    Py_XDECREF(mask);
    Py_XDECREF(ctx);
    return result;
}

/* --- construction ----------------------------------------------------------------------------- */

enum { T_WORDS, T_NWORDS, T_DIMS, T_HOURS = T_DIMS + NDIMS, T_NO_INVENTORY, T_CATEGORIES, T_CREATIVE_CAT,
       T_ADVERTISER, T_ADVERTISED_APP, T_SEAT, T_N };

static int
RequestMask_init(RequestMask *self, PyObject *args, PyObject *kwds)
{
    static const char *const dim_names[NDIMS] = {"country", "region", "device_type", "os"};
    PyObject *index, *t, *context, *privacy;
    if (self->rows != NULL) {
        PyErr_SetString(PyExc_TypeError, "RequestMask is already initialised");
        return -1;
    }
    if ((kwds != NULL && PyDict_GET_SIZE(kwds)) ||
        !PyArg_ParseTuple(args, "OO!OO:RequestMask", &index, &PyTuple_Type, &t, &context, &privacy)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "RequestMask takes positional arguments only");
        return -1;
    }
    if (PyTuple_GET_SIZE(t) != T_N) {
        PyErr_Format(PyExc_ValueError, "RequestMask: tables must have %d fields, got %zd", T_N, PyTuple_GET_SIZE(t));
        return -1;
    }
    if ((self->rows = load_rows("RequestMask", PyTuple_GET_ITEM(t, T_WORDS), PyTuple_GET_ITEM(t, T_NWORDS),
                                &self->nwords, &self->nrows)) == NULL ||
        (self->live_words = PyMem_Calloc(self->nwords, sizeof *self->live_words)) == NULL) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        return -1;
    }

    for (int i = 0; i < NDIMS; i++) {
        PyObject *d = PyTuple_GET_ITEM(t, T_DIMS + i);
        if (d == Py_None)
            continue;
        if (!PyTuple_Check(d) || PyTuple_GET_SIZE(d) != 2) {
            PyErr_Format(PyExc_TypeError, "RequestMask: %s must be None or (row, dict)", dim_names[i]);
            return -1;
        }
        if ((self->dim_any[i] = checked_row("RequestMask", self->nrows, PyTuple_GET_ITEM(d, 0), dim_names[i])) < 0 ||
            checked_table("RequestMask", self->nrows, PyTuple_GET_ITEM(d, 1), dim_names[i]) < 0)
            return -1;
        self->dim[i] = Py_NewRef(PyTuple_GET_ITEM(d, 1));
    }
    PyObject *hours = PyTuple_GET_ITEM(t, T_HOURS);
    if (hours != Py_None) {
        if (!PyTuple_Check(hours) || PyTuple_GET_SIZE(hours) != 24) {
            PyErr_SetString(PyExc_TypeError, "RequestMask: hours must be None or 24 rows");
            return -1;
        }
        for (int h = 0; h < 24; h++)
            if ((self->hours[h] = checked_row("RequestMask", self->nrows, PyTuple_GET_ITEM(hours, h), "hours")) < 0)
                return -1;
        self->hourly = 1;
    }
    if ((self->no_inventory =
             checked_row("RequestMask", self->nrows, PyTuple_GET_ITEM(t, T_NO_INVENTORY), "no_inventory")) < 0 ||
        (self->categories = PyObject_IsTrue(PyTuple_GET_ITEM(t, T_CATEGORIES))) < 0)
        return -1;
    static const char *const table_names[4] = {"creative_cat", "advertiser", "advertised_app", "seat"};
    PyObject **tables[4] = {&self->creative_cat, &self->advertiser, &self->advertised_app, &self->seat};
    for (int i = 0; i < 4; i++) {
        PyObject *d = PyTuple_GET_ITEM(t, T_CREATIVE_CAT + i);
        if (checked_table("RequestMask", self->nrows, d, table_names[i]) < 0)
            return -1;
        *tables[i] = Py_NewRef(d);
    }
    if ((self->inventories = PyDict_New()) == NULL || (self->category_rows = PyDict_New()) == NULL)
        return -1;
    self->index = Py_NewRef(index);
    self->context = Py_NewRef(context);
    self->privacy = Py_NewRef(privacy);
    self->ready = 1;
    return 0;
}

static void
RequestMask_dealloc(RequestMask *self)
{
    PyMem_Free(self->rows);
    PyMem_Free(self->live_words);
    for (int i = 0; i < NDIMS; i++)
        Py_XDECREF(self->dim[i]);
    Py_XDECREF(self->creative_cat);
    Py_XDECREF(self->advertiser);
    Py_XDECREF(self->advertised_app);
    Py_XDECREF(self->seat);
    Py_XDECREF(self->index);
    Py_XDECREF(self->context);
    Py_XDECREF(self->privacy);
    Py_XDECREF(self->inventories);
    Py_XDECREF(self->category_rows);
    Py_XDECREF(self->live);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef RequestMask_methods[] = {
    {"of", (PyCFunction)(void (*)(void))RequestMask_of, METH_FASTCALL,
     "of(req, now, live) -> (mask, Context): the lines of ``live`` the request's own signals allow."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject RequestMaskType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "bidder._native.RequestMask",
    .tp_basicsize = sizeof(RequestMask),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "RequestMask(index, tables, context, privacy): the request-level mask over the index's rows.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)RequestMask_init,
    .tp_dealloc = (destructor)RequestMask_dealloc,
    .tp_methods = RequestMask_methods,
};
