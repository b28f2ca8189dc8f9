/* The request gate of ReloadMiddleware in C: reloadmw.gate.PyGate, made cheaper.
 *
 * A request that arrives before the next check is due costs one clock read,
 * one comparison and the call to the app: no Python frame of our own. Any
 * other request goes to the Python method _checked_call(environ, start_response).
 *
 * _next_check is compared with a reading of the clock behind Python's
 * time.monotonic(), converted to float seconds exactly as CPython does it,
 * because Python code sets _next_check from time.monotonic(). reloadmw/gate.py
 * checks at import that both clocks agree and uses PyGate if they do not.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <time.h>

#if defined(_WIN32) || defined(__APPLE__)
/* CPython's time.monotonic() uses QueryPerformanceCounter / mach_absolute_time
 * there; setup.py does not build this module on those platforms. */
#error "reloadmw._gate needs CPython's POSIX monotonic clock"
#endif

#if defined(CLOCK_HIGHRES)
#define GATE_CLOCK CLOCK_HIGHRES /* what CPython uses where it exists (Solaris) */
#else
#define GATE_CLOCK CLOCK_MONOTONIC
#endif

typedef struct {
    PyObject_HEAD
    double next_check; /* time.monotonic() value from which a check is due */
    PyObject *dispatch; /* the WSGI app a request goes to */
    vectorcallfunc vectorcall;
} GateObject;

static char *call_keywords[] = {"environ", "start_response", NULL};

/* time.monotonic(), or -1.0 with an exception set. */
static inline double
monotonic(void)
{
    struct timespec ts;
    if (clock_gettime(GATE_CLOCK, &ts) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1.0;
    }
    /* _PyTime_AsSecondsDouble() on the nanoseconds, to get the same float. */
    int64_t ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    if (ns % 1000000000 == 0) {
        return (double)(ns / 1000000000);
    }
    return (double)ns / 1e9;
}

/* Where the request goes: 1 to the app, 0 to _checked_call, -1 on error. */
static inline int
to_app(GateObject *self)
{
    double now = monotonic();
    if (now == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    return now < self->next_check;
}

/* The slow path, at most once per interval: no cached name object, so that
 * nothing is shared between the interpreters of a mod_wsgi process. */
static PyObject *
checked_call(GateObject *self, PyObject *environ, PyObject *start_response)
{
    return PyObject_CallMethod((PyObject *)self, "_checked_call", "OO", environ, start_response);
}

static PyObject *
no_dispatch(void)
{
    PyErr_SetString(PyExc_AttributeError, "'Gate' object has no attribute '_dispatch'");
    return NULL;
}

/* The call from C (mod_wsgi: PyObject_Call with an args tuple, passed through as it is). */
static PyObject *
gate_call(GateObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *environ, *start_response, *result;

    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) == 0) {
        kwargs = NULL;
    }
    if (kwargs == NULL && PyTuple_GET_SIZE(args) == 2) {
        environ = PyTuple_GET_ITEM(args, 0);
        start_response = PyTuple_GET_ITEM(args, 1);
    }
    else {
        /* Keywords or a wrong count: bind them as def __call__(self, environ,
         * start_response) would, and pass them on positionally like PyGate. */
        if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO:__call__", call_keywords, &environ,
                                         &start_response)) {
            return NULL;
        }
        args = NULL;
    }

    switch (to_app(self)) {
    case 1: {
        /* Own a reference: the app may replace self._dispatch while it runs. */
        PyObject *dispatch = self->dispatch;
        if (dispatch == NULL) {
            return no_dispatch();
        }
        Py_INCREF(dispatch);
        if (args != NULL) {
            result = PyObject_Call(dispatch, args, NULL);
        }
        else {
            PyObject *stack[2] = {environ, start_response};
            result = PyObject_Vectorcall(dispatch, stack, 2, NULL);
        }
        Py_DECREF(dispatch);
        return result;
    }
    case 0:
        return checked_call(self, environ, start_response);
    default:
        return NULL;
    }
}

/* The call from Python code, where the interpreter supports it for this type. */
static PyObject *
gate_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    GateObject *self = (GateObject *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);

    if (nargs != 2 || kwnames != NULL) {
        /* Unusual: go through the tuple and dict form, which binds keywords. */
        PyObject *tuple, *kwargs = NULL, *result;
        Py_ssize_t i, nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
        tuple = PyTuple_New(nargs);
        if (tuple == NULL) {
            return NULL;
        }
        for (i = 0; i < nargs; i++) {
            Py_INCREF(args[i]);
            PyTuple_SET_ITEM(tuple, i, args[i]);
        }
        if (nkw > 0) {
            kwargs = PyDict_New();
            if (kwargs == NULL) {
                Py_DECREF(tuple);
                return NULL;
            }
            for (i = 0; i < nkw; i++) {
                if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) {
                    Py_DECREF(kwargs);
                    Py_DECREF(tuple);
                    return NULL;
                }
            }
        }
        result = gate_call(self, tuple, kwargs);
        Py_XDECREF(kwargs);
        Py_DECREF(tuple);
        return result;
    }

    switch (to_app(self)) {
    case 1: {
        PyObject *dispatch = self->dispatch;
        PyObject *result;
        if (dispatch == NULL) {
            return no_dispatch();
        }
        Py_INCREF(dispatch);
        result = PyObject_Vectorcall(dispatch, args, nargsf, NULL);
        Py_DECREF(dispatch);
        return result;
    }
    case 0:
        return checked_call(self, args[0], args[1]);
    default:
        return NULL;
    }
}

static PyObject *
gate_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    GateObject *self;

    /* As object.__new__: arguments are for an __init__ of a subclass. */
    if (type->tp_init == PyBaseObject_Type.tp_init &&
        (PyTuple_GET_SIZE(args) > 0 || (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0))) {
        PyErr_Format(PyExc_TypeError, "%.200s() takes no arguments", type->tp_name);
        return NULL;
    }
    self = (GateObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->next_check = 0.0;
    self->dispatch = NULL;
    self->vectorcall = gate_vectorcall;
    return (PyObject *)self;
}

static int
gate_traverse(GateObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->dispatch);
    return 0;
}

static int
gate_clear(GateObject *self)
{
    Py_CLEAR(self->dispatch);
    return 0;
}

static void
gate_dealloc(GateObject *self)
{
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->dispatch);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef gate_members[] = {
    {"_next_check", T_DOUBLE, offsetof(GateObject, next_check), 0,
     "time.monotonic() value from which a request goes to _checked_call()"},
    {"_dispatch", T_OBJECT_EX, offsetof(GateObject, dispatch), 0,
     "the WSGI app a request goes to before then"},
    {NULL},
};

PyDoc_STRVAR(gate_doc,
             "Gate()\n--\n\n"
             "Call ``self._dispatch`` until ``time.monotonic()`` reaches ``self._next_check``,\n"
             "then ``self._checked_call(environ, start_response)``.");

static PyTypeObject GateType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "reloadmw._gate.Gate",
    .tp_basicsize = sizeof(GateObject),
    .tp_dealloc = (destructor)gate_dealloc,
    .tp_vectorcall_offset = offsetof(GateObject, vectorcall),
    .tp_call = (ternaryfunc)gate_call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC |
                Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = gate_doc,
    .tp_traverse = (traverseproc)gate_traverse,
    .tp_clear = (inquiry)gate_clear,
    .tp_members = gate_members,
    .tp_new = gate_new,
};

static PyObject *
gate_monotonic(PyObject *module, PyObject *unused)
{
    double now = monotonic();
    if (now == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    return PyFloat_FromDouble(now);
}

static PyMethodDef module_methods[] = {
    {"monotonic", gate_monotonic, METH_NOARGS,
     "monotonic() -> float\n--\n\nThe gate's clock; equal to time.monotonic()."},
    {NULL},
};

static struct PyModuleDef gate_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "reloadmw._gate",
    .m_doc = "The C request gate of reloadmw; see reloadmw.gate.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__gate(void)
{
    PyObject *module;

    if (PyType_Ready(&GateType) < 0) {
        return NULL;
    }
    module = PyModule_Create(&gate_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&GateType);
    if (PyModule_AddObject(module, "Gate", (PyObject *)&GateType) < 0) {
        Py_DECREF(&GateType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
