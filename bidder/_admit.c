/* The budget gate's admission in C: a bid's pacing draw and the reservation of its cost, held in
 * aggregate, against every budget of its campaign.
 *
 * ``bidder.budget.BudgetGate.admit_py`` is its Python twin: ``shield.Pacer.allow``, then
 * ``shield.Holds.reserve`` over ``shield.BudgetManager.hold``; the tests compare the two. This file does
 * what those methods do in their common case only, reading and writing the objects' ``__slots__``
 * directly: the pacer is not due for its update, the bid's slot of the holds is the current one, and
 * every budget accepts the amount without catching up its window or crossing its alert level. Anything
 * else, and any object not of the exact type whose slots were learned, goes to the Python methods before
 * anything has changed: refusals, alerts and expiry keep one implementation.
 *
 * Why no lock is taken. The shield's locks keep other threads from seeing a method's changes half made,
 * because the interpreter may switch threads between any two lines of Python. From its first read to
 * its last write this code holds the GIL and runs no Python code (the clocks and the random draw are
 * called before), so no thread can switch in. What it must not do is change an object while a thread
 * that holds the object's lock is suspended inside a method: it reads each lock's ``locked()`` and
 * leaves the work to the Python methods, which wait for it, when one is held.
 */
#include "_native.h"
#include <structmember.h>

#ifdef Py_GIL_DISABLED
#error "the admission's fast path relies on the GIL (see the comment at the top)"
#endif

#define MAX_GROUP 8  /* budgets per bid: a campaign's total, daily and window caps, its platform's cap */

/* The slots read and written, by type. */
enum { M_LOCK, M_NOW, M_NEXT_EVENT, M_TOTAL, M_MAX, M_RESERVED, M_HELD, M_HELD_COUNT, M_ACCEPTED,
       M_ALERT_LEVEL, M_ALERTED, M_N };
static const char *const manager_names[M_N] = {
    "_lock", "_now", "_next_event", "_total", "_max", "_reserved", "_held", "_held_count", "_accepted",
    "_alert_level", "_alerted",
};
enum { H_LOCK, H_NOW, H_SLOT_SECONDS, H_KEY, H_SLOT, H_N };
static const char *const holds_names[H_N] = {"_lock", "_now", "_slot_seconds", "_key", "_slot"};
enum { S_HELD, S_FIRST, S_LAST, S_N };
static const char *const slot_names[S_N] = {"held", "first", "last"};
enum { P_TIME, P_NEXT_UPDATE, P_RATE, P_N };
static const char *const pacer_names[P_N] = {"_time", "_next_update", "_rate"};

typedef struct {
    PyTypeObject *type;
    Py_ssize_t offset[M_N];  /* the largest of the four */
} Layout;

static Layout manager_l, holds_l, slot_l, pacer_l;
static PyTypeObject *lock_type;
static PyObject *locked;  /* the lock type's ``locked`` method */
static PyObject *s_pacing, *s_allow, *s_reserve;

#define SLOT(o, l, i) (*(PyObject **)((char *)(o) + (l).offset[i]))

/* Where ``type`` keeps each of ``names``: all must be writable object slots. 0, or -1 with an error. */
static int
learn_layout(Layout *l, PyObject *type, const char *const *names, int n)
{
    if (!PyType_Check(type)) {
        PyErr_Format(PyExc_TypeError, "Admit: expected a class for %s, got %R", names[0], type);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        PyObject *d = PyObject_GetAttrString(type, names[i]);
        if (d == NULL)
            return -1;
        int ok = Py_IS_TYPE(d, &PyMemberDescr_Type) &&
                 ((PyMemberDescrObject *)d)->d_member->type == T_OBJECT_EX &&
                 !(((PyMemberDescrObject *)d)->d_member->flags & READONLY);
        if (ok)
            l->offset[i] = ((PyMemberDescrObject *)d)->d_member->offset;
        Py_DECREF(d);
        if (!ok) {
            PyErr_Format(PyExc_TypeError, "Admit: %s.%s is not a writable slot", ((PyTypeObject *)type)->tp_name,
                         names[i]);
            return -1;
        }
    }
    l->type = (PyTypeObject *)Py_NewRef(type);
    return 0;
}

/* The shield's classes and the slots this file uses, learned once. */
static int
layouts_ready(void)
{
    if (locked != NULL)
        return 0;
    PyObject *shield = PyImport_ImportModule("shield"), *holds = PyImport_ImportModule("shield.holds");
    PyObject *thread = PyImport_ImportModule("_thread");
    PyObject *m = NULL, *h = NULL, *s = NULL, *p = NULL, *lt = NULL;
    int rc = -1;
    if (shield != NULL && holds != NULL && thread != NULL &&
        (m = PyObject_GetAttrString(shield, "BudgetManager")) != NULL &&
        (h = PyObject_GetAttrString(shield, "Holds")) != NULL &&
        (s = PyObject_GetAttrString(holds, "_Slot")) != NULL &&
        (p = PyObject_GetAttrString(shield, "Pacer")) != NULL &&
        (lt = PyObject_GetAttrString(thread, "LockType")) != NULL &&
        learn_layout(&manager_l, m, manager_names, M_N) == 0 && learn_layout(&holds_l, h, holds_names, H_N) == 0 &&
        learn_layout(&slot_l, s, slot_names, S_N) == 0 && learn_layout(&pacer_l, p, pacer_names, P_N) == 0 &&
        (s_pacing = PyUnicode_InternFromString("pacing")) != NULL &&
        (s_allow = PyUnicode_InternFromString("allow")) != NULL &&
        (s_reserve = PyUnicode_InternFromString("reserve")) != NULL &&
        PyType_Check(lt) && (locked = PyObject_GetAttrString(lt, "locked")) != NULL) {
        lock_type = (PyTypeObject *)Py_NewRef(lt);
        rc = 0;
    }
    Py_XDECREF(shield);
    Py_XDECREF(holds);
    Py_XDECREF(thread);
    Py_XDECREF(m);
    Py_XDECREF(h);
    Py_XDECREF(s);
    Py_XDECREF(p);
    Py_XDECREF(lt);
    return rc;
}

/* 1 when ``lock`` is a lock no thread holds; 0 otherwise (held, or not a plain lock); -1 with an error. */
static int
free_lock(PyObject *lock)
{
    if (lock == NULL || !Py_IS_TYPE(lock, lock_type))
        return 0;
    PyObject *r = PyObject_Vectorcall(locked, &lock, 1, NULL);
    if (r == NULL)
        return -1;
    int held = r == Py_True;
    Py_DECREF(r);
    return !held;
}

/* ``o`` as a long long when it is an exact int that fits; 0 otherwise. */
static int
ll_of(PyObject *o, long long *v)
{
    if (o == NULL || !PyLong_CheckExact(o))
        return 0;
    int overflow;
    *v = PyLong_AsLongLongAndOverflow(o, &overflow);
    return !overflow && !(*v == -1 && PyErr_Occurred());
}

/* ``a >= b`` for exact ints and floats (compared by CPython's own rules, which run no Python code);
 * -1 for anything else, or an error. */
static int
at_or_past(PyObject *a, PyObject *b)
{
    if (a == NULL || b == NULL || !(PyFloat_CheckExact(a) || PyLong_CheckExact(a)) ||
        !(PyFloat_CheckExact(b) || PyLong_CheckExact(b)))
        return -1;
    return PyObject_RichCompareBool(a, b, Py_GE);
}

/* --- the reservation --------------------------------------------------------------------------------- */

/* The slots ``BudgetManager.hold`` sets, in the order ``hold_here`` makes their new values. */
static const int hold_slots[5] = {M_TOTAL, M_RESERVED, M_HELD, M_HELD_COUNT, M_ACCEPTED};

/* The new value of ``manager``'s slot ``i``: its int plus ``d``; NULL when it is not an int that fits
 * (no error set) or with an error. */
static PyObject *
plus(PyObject *manager, int i, long long d)
{
    long long v;
    if (!ll_of(SLOT(manager, manager_l, i), &v) || v > LLONG_MAX - d)
        return NULL;
    return PyLong_FromLongLong(v + d);
}

/* ``Holds.reserve(group, key, amount, serial)`` when its common case applies: 1 held, 0 left to the
 * Python method with nothing changed, -1 with an error (nothing changed). ``nows``: each budget's clock,
 * read by the caller, then the holds' clock. */
static int
hold_here(PyObject *holds, PyObject *group, long long key, long long amount, PyObject *serial, PyObject **nows)
{
    Py_ssize_t n = PyTuple_GET_SIZE(group);
    PyObject *v[MAX_GROUP][5] = {{NULL}};  /* each budget's new values of ``hold_slots`` */
    int rc = 0;
    PyObject *slot = SLOT(holds, holds_l, H_SLOT), *sum = NULL;
    long long slot_seconds, current, first, before = 0;
    if (!ll_of(SLOT(holds, holds_l, H_SLOT_SECONDS), &slot_seconds) || slot_seconds < 1 ||
        !ll_of(SLOT(holds, holds_l, H_KEY), &current) || key / slot_seconds != current ||
        slot == NULL || !Py_IS_TYPE(slot, slot_l.type) || !ll_of(SLOT(slot, slot_l, S_FIRST), &first))
        return 0;
    PyObject *held = SLOT(slot, slot_l, S_HELD);
    if (held == NULL || !PyDict_CheckExact(held) || amount > (LLONG_MAX >> 32))
        return 0;
    int unlocked = free_lock(SLOT(holds, holds_l, H_LOCK));
    if (unlocked <= 0)
        return unlocked;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *m = PyTuple_GET_ITEM(group, i);
        for (Py_ssize_t j = 0; j < i; j++)
            if (PyTuple_GET_ITEM(group, j) == m)
                goto done;  /* a budget twice in a group: held twice, one after the other */
        if ((unlocked = free_lock(SLOT(m, manager_l, M_LOCK))) <= 0) {
            rc = unlocked;
            goto done;
        }
        int due = at_or_past(nows[i], SLOT(m, manager_l, M_NEXT_EVENT));
        if (due != 0) {
            rc = due < 0 && PyErr_Occurred() ? -1 : 0;
            goto done;
        }
        long long total, max, alert_level;
        PyObject *alerted = SLOT(m, manager_l, M_ALERTED);
        if (!ll_of(SLOT(m, manager_l, M_TOTAL), &total) || total > LLONG_MAX - amount ||
            !ll_of(SLOT(m, manager_l, M_MAX), &max) || !ll_of(SLOT(m, manager_l, M_ALERT_LEVEL), &alert_level) ||
            (total += amount) > max || (alerted != Py_True && (alerted != Py_False || total >= alert_level)))
            goto done;  /* refused, alerting, or not plain ints: Python's to do */
        if ((v[i][0] = PyLong_FromLongLong(total)) == NULL || (v[i][1] = plus(m, M_RESERVED, amount)) == NULL ||
            (v[i][2] = plus(m, M_HELD, amount)) == NULL || (v[i][3] = plus(m, M_HELD_COUNT, 1)) == NULL ||
            (v[i][4] = plus(m, M_ACCEPTED, 1)) == NULL) {
            rc = PyErr_Occurred() ? -1 : 0;
            goto done;
        }
    }
    PyObject *old = PyDict_GetItemWithError(held, group);
    if ((old == NULL && PyErr_Occurred()) || (old != NULL && !ll_of(old, &before)) ||
        before > LLONG_MAX - ((amount << 32) | 1)) {
        rc = PyErr_Occurred() ? -1 : 0;
        goto done;
    }
    if ((sum = PyLong_FromLongLong(before + ((amount << 32) | 1))) == NULL ||
        PyDict_SetItem(held, group, sum) < 0) {  /* the one write that can fail: first */
        rc = -1;
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        for (int k = 0; k < 5; k++) {
            Py_SETREF(SLOT(PyTuple_GET_ITEM(group, i), manager_l, hold_slots[k]), v[i][k]);
            v[i][k] = NULL;
        }
    Py_XSETREF(SLOT(slot, slot_l, S_LAST), Py_NewRef(nows[n]));
    if (first < 0)
        Py_SETREF(SLOT(slot, slot_l, S_FIRST), Py_NewRef(serial));
    rc = 1;
done:
    for (Py_ssize_t i = 0; i < n; i++)
        for (int k = 0; k < 5; k++)
            Py_XDECREF(v[i][k]);
    Py_XDECREF(sum);
    return rc;
}

/* ``Holds.reserve``: here when ``hold_here`` can, else through the Python method. Py_True or Py_False
 * (new references), or NULL with an error. ``fast``: incremented when held here. */
static PyObject *
reserve(PyObject *holds, PyObject *group, PyObject *key, PyObject *amount, PyObject *serial, Py_ssize_t *fast)
{
    long long k, a;
    if (Py_IS_TYPE(holds, holds_l.type) && PyTuple_CheckExact(group) && PyTuple_GET_SIZE(group) < MAX_GROUP &&
        ll_of(key, &k) && k >= 0 && ll_of(amount, &a) && a >= 0 && PyLong_CheckExact(serial)) {
        Py_ssize_t n = PyTuple_GET_SIZE(group), called = 0;
        PyObject *nows[MAX_GROUP + 1];
        int rc = 0;
        for (Py_ssize_t i = 0; i < n; i++)
            if (!Py_IS_TYPE(PyTuple_GET_ITEM(group, i), manager_l.type))
                goto python;
        for (; called <= n; called++) {
            PyObject *clock = called < n ? SLOT(PyTuple_GET_ITEM(group, called), manager_l, M_NOW)
                                         : SLOT(holds, holds_l, H_NOW);
            if (clock == NULL || (nows[called] = PyObject_CallNoArgs(clock)) == NULL) {
                rc = -1;
                break;
            }
        }
        if (rc == 0)
            rc = hold_here(holds, group, k, a, serial, nows);
        for (Py_ssize_t i = 0; i < called; i++)
            Py_DECREF(nows[i]);
        if (rc < 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_AttributeError, "Admit: a budget or the holds lost its clock");
            return NULL;
        }
        if (rc == 1) {
            ++*fast;
            Py_RETURN_TRUE;
        }
    }
python:;
    PyObject *args[5] = {holds, group, key, amount, serial};
    PyObject *r = PyObject_VectorcallMethod(s_reserve, args, 5 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    if (r == NULL)
        return NULL;
    int ok = PyObject_IsTrue(r);
    Py_DECREF(r);
    return ok < 0 ? NULL : Py_NewRef(ok ? Py_True : Py_False);
}

/* --- the pacer ---------------------------------------------------------------------------------------- */

/* ``pacer.allow(u)``: 1 or 0, -1 with an error. Read here unless the pacer is due for its update. */
static int
allow(PyObject *pacer, PyObject *u)
{
    if (Py_IS_TYPE(pacer, pacer_l.type) && PyFloat_CheckExact(u)) {
        PyObject *clock = SLOT(pacer, pacer_l, P_TIME);
        if (clock == NULL)
            goto python;
        PyObject *now = PyObject_CallNoArgs(clock);
        if (now == NULL)
            return -1;
        int due = at_or_past(now, SLOT(pacer, pacer_l, P_NEXT_UPDATE));
        Py_DECREF(now);
        if (due < 0 && PyErr_Occurred())
            return -1;
        PyObject *rate = SLOT(pacer, pacer_l, P_RATE);  /* after the clock, which may have run Python */
        if (due == 0 && rate != NULL && PyFloat_CheckExact(rate))
            return PyFloat_AS_DOUBLE(u) < PyFloat_AS_DOUBLE(rate);
    }
python:;
    PyObject *args[2] = {pacer, u};
    PyObject *r = PyObject_VectorcallMethod(s_allow, args, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    if (r == NULL)
        return -1;
    int ok = PyObject_IsTrue(r);
    Py_DECREF(r);
    return ok;
}

/* --- the type ------------------------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *pacers, *groups, *holds, *rng, *refused;
    Py_ssize_t fast;  /* reservations held here rather than by the Python methods */
} Admit;

static PyObject *
Admit_call(Admit *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (self->groups == NULL) {
        PyErr_SetString(PyExc_TypeError, "Admit was not initialised");
        return NULL;
    }
    if (nargs != 4 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "Admit takes (campaign, key, micros, serial)");
        return NULL;
    }
    PyObject *campaign = args[0];
    Py_ssize_t c = PyLong_AsSsize_t(campaign);
    if (c == -1 && PyErr_Occurred())
        return NULL;
    if (c < 0 || c >= PyList_GET_SIZE(self->groups) || c >= PyList_GET_SIZE(self->pacers)) {
        PyErr_Format(PyExc_IndexError, "Admit: no campaign %zd", c);
        return NULL;
    }
    /* Both taken now: the random draw and the clocks may run Python code. */
    PyObject *pacer = Py_NewRef(PyList_GET_ITEM(self->pacers, c));
    PyObject *group = Py_NewRef(PyList_GET_ITEM(self->groups, c));
    PyObject *r = NULL;
    if (pacer != Py_None) {
        PyObject *u = PyObject_CallNoArgs(self->rng);
        int ok = u == NULL ? -1 : allow(pacer, u);
        Py_XDECREF(u);
        if (ok <= 0) {
            r = ok < 0 ? NULL : Py_NewRef(s_pacing);
            goto done;
        }
    }
    r = reserve(self->holds, group, args[1], args[2], args[3], &self->fast);
done:
    Py_DECREF(pacer);
    Py_DECREF(group);
    if (r == NULL || r == s_pacing)
        return r;
    Py_DECREF(r);
    if (r == Py_True)
        Py_RETURN_NONE;
    return PyObject_CallOneArg(self->refused, campaign);
}

static int
Admit_init(Admit *self, PyObject *args, PyObject *kwds)
{
    PyObject *pacers, *groups, *holds, *rng, *refused;
    if (self->groups != NULL) {
        PyErr_SetString(PyExc_TypeError, "Admit is already initialised");
        return -1;
    }
    if ((kwds != NULL && PyDict_GET_SIZE(kwds)) ||
        !PyArg_ParseTuple(args, "O!O!OOO:Admit", &PyList_Type, &pacers, &PyList_Type, &groups, &holds, &rng,
                          &refused)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "Admit takes positional arguments only");
        return -1;
    }
    if (layouts_ready() < 0)
        return -1;
    if (!Py_IS_TYPE(holds, holds_l.type)) {
        PyErr_Format(PyExc_TypeError, "Admit: holds must be a shield.Holds, got %s", Py_TYPE(holds)->tp_name);
        return -1;
    }
    if (!PyCallable_Check(rng) || !PyCallable_Check(refused)) {
        PyErr_SetString(PyExc_TypeError, "Admit: rng and refused must be callable");
        return -1;
    }
    self->pacers = Py_NewRef(pacers);
    self->holds = Py_NewRef(holds);
    self->rng = Py_NewRef(rng);
    self->refused = Py_NewRef(refused);
    self->groups = Py_NewRef(groups);  /* last: what says it is initialised */
    return 0;
}

static int
Admit_traverse(Admit *self, visitproc visit, void *arg)
{
    Py_VISIT(self->pacers);
    Py_VISIT(self->groups);
    Py_VISIT(self->holds);
    Py_VISIT(self->rng);
    Py_VISIT(self->refused);
    return 0;
}

static int
Admit_clear(Admit *self)
{
    Py_CLEAR(self->groups);
    Py_CLEAR(self->pacers);
    Py_CLEAR(self->holds);
    Py_CLEAR(self->rng);
    Py_CLEAR(self->refused);
    return 0;
}

static void
Admit_dealloc(Admit *self)
{
    PyObject_GC_UnTrack(self);
    Admit_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Admit_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args, (void)kwds;  /* __init__ reads them */
    Admit *self = (Admit *)type->tp_alloc(type, 0);
    if (self != NULL)
        self->vectorcall = (vectorcallfunc)Admit_call;
    return (PyObject *)self;
}

/* ``hold(group, key, amount, serial)``: for the tests, the reservation alone. */
static PyObject *
Admit_hold(Admit *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (self->groups == NULL) {
        PyErr_SetString(PyExc_TypeError, "Admit was not initialised");
        return NULL;
    }
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "hold takes (group, key, amount, serial)");
        return NULL;
    }
    return reserve(self->holds, args[0], args[1], args[2], args[3], &self->fast);
}

static PyMethodDef Admit_methods[] = {
    {"hold", (PyCFunction)(void (*)(void))Admit_hold, METH_FASTCALL,
     "hold(group, key, amount, serial) -> bool: ``Holds.reserve``, here when its common case applies."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Admit_members[] = {
    {"fast", T_PYSSIZET, offsetof(Admit, fast), READONLY, "reservations held here, not by the Python methods"},
    {NULL, 0, 0, 0, NULL},
};

PyTypeObject AdmitType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "bidder._native.Admit",
    .tp_basicsize = sizeof(Admit),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "Admit(pacers, groups, holds, rng, refused): the budget gate's admit(campaign, key, micros, serial).",
    .tp_new = Admit_new,
    .tp_init = (initproc)Admit_init,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Admit, vectorcall),
    .tp_traverse = (traverseproc)Admit_traverse,
    .tp_clear = (inquiry)Admit_clear,
    .tp_dealloc = (destructor)Admit_dealloc,
    .tp_methods = Admit_methods,
    .tp_members = Admit_members,
};
