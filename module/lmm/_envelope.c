/* The small-model criterion in compiled code: M = ΛᵀAΛ + I_q from its quadratic form in
 * v = (θ, 1), its envelope (profile) Cholesky factor L, and the criterion profiled over σ.
 *
 * dense.py holds the Python side (DenseSystem) and the meaning of each number. One evaluation of a
 * sleepstudy-sized model (39 rows) takes about 1.1 µs here against about 10 µs through numpy and
 * LAPACK, whose per-call overhead dominates at this size.
 *
 * M's lower triangle is kept row by row from each row's first non-zero column (its envelope);
 * a Cholesky factor has no fill outside the envelope of the matrix it factors.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Py_ssize_t size, q, ntheta, npairs, ncells, packed;
    Py_ssize_t *first, *second; /* npairs: indices into v of each pair's two factors */
    double *coef;               /* ncells × npairs: the coefficient of each pair in each cell */
    Py_ssize_t *pos;            /* ncells: each cell's place in the packed envelope */
    Py_ssize_t *env;            /* size: the first column of each row's envelope */
    Py_ssize_t *start;          /* size: where each row starts in the packed envelope */
    double *L, *v, *w;          /* work: the packed envelope, v = (θ, 1), the pairs vₖvₗ */
    double dof, sum_log_w, ldR, log_const;
    int reml;
} Envelope;

static void envelope_dealloc(Envelope *self) {
    PyMem_Free(self->first);
    PyMem_Free(self->second);
    PyMem_Free(self->coef);
    PyMem_Free(self->pos);
    PyMem_Free(self->env);
    PyMem_Free(self->start);
    PyMem_Free(self->L);
    PyMem_Free(self->v);
    PyMem_Free(self->w);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Whether a buffer's struct format is one of ``fmts`` (single characters, native order). */
static int format_in(const char *format, const char *fmts) {
    return format != NULL && format[0] != '\0' && format[1] == '\0' && strchr(fmts, format[0]) != NULL;
}

/* A C-contiguous buffer of ``count`` items, of one of the struct formats ``fmt`` ("d" for
 * float64; "nlq" for integers of Py_ssize_t's size: numpy's intp is "l" or "q"), copied. */
static void *copy_buffer(PyObject *obj, const char *fmt, Py_ssize_t itemsize, Py_ssize_t count,
                         const char *name) {
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    if (!format_in(view.format, fmt) || view.itemsize != itemsize ||
        view.len != itemsize * count) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError, "%s: expected %zd items of format '%s'", name, count, fmt);
        return NULL;
    }
    void *out = PyMem_Malloc(view.len > 0 ? view.len : 1);
    if (out == NULL) {
        PyBuffer_Release(&view);
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(out, view.buf, view.len);
    PyBuffer_Release(&view);
    return out;
}

/* From the coefficients (pairs × cells, C order) and the cells (flat C-order indices into the
 * size × size M, row ≥ column): the cells whose coefficient is not zero for every pair (a cell
 * that is zero at every θ does not widen its row's envelope), their coefficients (cells ×
 * pairs), each row's envelope and each kept cell's place in the packed envelope. */
static int plan_envelope(Envelope *self, const double *coef, const Py_ssize_t *cells, Py_ssize_t ncells) {
    Py_ssize_t n = self->size, K = self->npairs, kept = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        self->env[i] = i;
    for (Py_ssize_t c = 0; c < ncells; c++) {
        Py_ssize_t i = cells[c] / n, j = cells[c] % n;
        if (cells[c] < 0 || i >= n || j > i) {
            PyErr_SetString(PyExc_ValueError, "cells: expected row >= column within the matrix");
            return -1;
        }
        int zero = 1;
        for (Py_ssize_t k = 0; k < K; k++) {
            double a = coef[k * ncells + c];
            self->coef[kept * K + k] = a;
            zero = zero && a == 0.0;
        }
        if (zero)
            continue;
        self->pos[kept++] = cells[c]; /* the flat index for now: its place once the envelope is known */
        if (j < self->env[i])
            self->env[i] = j;
    }
    self->ncells = kept;
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        self->start[i] = total;
        total += i - self->env[i] + 1;
    }
    self->packed = total;
    for (Py_ssize_t c = 0; c < kept; c++) {
        Py_ssize_t i = self->pos[c] / n, j = self->pos[c] % n;
        self->pos[c] = self->start[i] + j - self->env[i];
    }
    return 0;
}

/* M's cells from θ, then its envelope Cholesky factor in place; 0 when M is not positive definite. */
static int factor(Envelope *self, const double *theta) {
    Py_ssize_t nt = self->ntheta, K = self->npairs, n = self->size;
    double *v = self->v, *w = self->w, *L = self->L;
    for (Py_ssize_t k = 0; k < nt; k++)
        v[k] = theta[k];
    v[nt] = 1.0;
    for (Py_ssize_t k = 0; k < K; k++)
        w[k] = v[self->first[k]] * v[self->second[k]];
    memset(L, 0, (size_t)self->packed * sizeof(double));
    const double *cf = self->coef;
    for (Py_ssize_t c = 0; c < self->ncells; c++, cf += K) {
        double s = 0.0;
        for (Py_ssize_t k = 0; k < K; k++)
            s += w[k] * cf[k];
        L[self->pos[c]] = s;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t ei = self->env[i];
        double *Li = L + self->start[i] - ei; /* Li[j]: the cell (i, j) */
        for (Py_ssize_t j = ei; j < i; j++) {
            Py_ssize_t ej = self->env[j];
            const double *Lj = L + self->start[j] - ej;
            double s = Li[j];
            for (Py_ssize_t k = ei > ej ? ei : ej; k < j; k++)
                s -= Li[k] * Lj[k];
            Li[j] = s / Lj[j];
        }
        double d = Li[i];
        for (Py_ssize_t k = ei; k < i; k++)
            d -= Li[k] * Li[k];
        if (!(d > 0.0))
            return 0;
        Li[i] = sqrt(d);
    }
    return 1;
}

/* log|L_θ|², log|R_X|² and r² from the factor's diagonal. */
static void terms(const Envelope *self, double *ldL2, double *ldRX2, double *pwrss) {
    Py_ssize_t n = self->size;
    double ld = 0.0, lx = 0.0;
    for (Py_ssize_t i = 0; i < self->q; i++)
        ld += log(self->L[self->start[i] + i - self->env[i]]);
    for (Py_ssize_t i = self->q; i < n - 1; i++)
        lx += log(self->L[self->start[i] + i - self->env[i]]);
    double r = self->L[self->start[n - 1] + n - 1 - self->env[n - 1]];
    *ldL2 = 2.0 * ld;
    *ldRX2 = 2.0 * lx;
    *pwrss = r * r;
}

/* θ from the first argument: a C-contiguous float64 buffer of ntheta items (not copied). */
static int read_theta(Envelope *self, PyObject *obj, Py_buffer *view) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    if (!format_in(view->format, "d") ||
        view->len != (Py_ssize_t)sizeof(double) * self->ntheta) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_ValueError, "theta: expected %zd float64 numbers", self->ntheta);
        return -1;
    }
    return 0;
}

/* The criterion profiled over σ at θ (inf where M is not positive definite or r² is not
 * positive); called as f(θ) or, as NLopt does, f(θ, gradient) with the gradient ignored. */
static PyObject *envelope_vectorcall(PyObject *obj, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Envelope *self = (Envelope *)obj;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs < 1 || nargs > 2 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0)) {
        PyErr_SetString(PyExc_TypeError, "expected (theta) or (theta, gradient)");
        return NULL;
    }
    Py_buffer view;
    if (read_theta(self, args[0], &view) < 0)
        return NULL;
    int ok = factor(self, (const double *)view.buf);
    PyBuffer_Release(&view);
    if (!ok)
        return PyFloat_FromDouble(INFINITY);
    double ldL2, ldRX2, pwrss;
    terms(self, &ldL2, &ldRX2, &pwrss);
    if (!isfinite(ldL2) || !(pwrss > 0.0) || !(self->dof > 0.0))
        return PyFloat_FromDouble(INFINITY);
    double val = ldL2 - self->sum_log_w + self->dof * (self->log_const + log(pwrss / self->dof));
    if (self->reml)
        val += ldRX2 + self->ldR;
    return PyFloat_FromDouble(val);
}

static PyObject *envelope_terms(PyObject *obj, PyObject *theta) {
    Envelope *self = (Envelope *)obj;
    Py_buffer view;
    if (read_theta(self, theta, &view) < 0)
        return NULL;
    int ok = factor(self, (const double *)view.buf);
    PyBuffer_Release(&view);
    if (!ok)
        Py_RETURN_NONE;
    double ldL2, ldRX2, pwrss;
    terms(self, &ldL2, &ldRX2, &pwrss);
    return Py_BuildValue("(ddd)", ldL2, ldRX2, pwrss);
}

static PyObject *envelope_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"first", "second", "coef", "cells", "size", "q", "dof", "sum_log_w", "ldR", "reml", NULL};
    PyObject *first, *second, *coef, *cells;
    Py_ssize_t size, q;
    double dof = 0.0, sum_log_w = 0.0, ldR = 0.0;
    int reml = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOnn|dddp", kwlist, &first, &second, &coef, &cells, &size, &q,
                                     &dof, &sum_log_w, &ldR, &reml))
        return NULL;
    Py_ssize_t npairs = PyObject_Length(first), ncells = PyObject_Length(cells);
    if (npairs < 1 || ncells < 0 || size < 1 || q < 0 || q >= size) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "expected pairs, cells, 0 <= q < size");
        return NULL;
    }
    Envelope *self = (Envelope *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->vectorcall = envelope_vectorcall;
    self->size = size;
    self->q = q;
    self->npairs = npairs;
    self->dof = dof;
    self->sum_log_w = sum_log_w;
    self->ldR = ldR;
    self->reml = reml;
    self->log_const = 1.0 + log(2.0 * M_PI);
    double *cf = NULL;
    Py_ssize_t *cl = NULL;
    self->first = copy_buffer(first, "nlq", sizeof(Py_ssize_t), npairs, "first");
    self->second = self->first ? copy_buffer(second, "nlq", sizeof(Py_ssize_t), npairs, "second") : NULL;
    cf = self->second ? copy_buffer(coef, "d", sizeof(double), npairs * ncells, "coef") : NULL;
    cl = cf ? copy_buffer(cells, "nlq", sizeof(Py_ssize_t), ncells, "cells") : NULL;
    if (cl == NULL)
        goto fail;
    Py_ssize_t nv = 0;
    for (Py_ssize_t k = 0; k < npairs; k++) {
        if (self->first[k] < 0 || self->second[k] < 0) {
            PyErr_SetString(PyExc_ValueError, "first, second: expected indices >= 0");
            goto fail;
        }
        nv = self->first[k] + 1 > nv ? self->first[k] + 1 : nv;
        nv = self->second[k] + 1 > nv ? self->second[k] + 1 : nv;
    }
    self->ntheta = nv - 1;
    size_t cells_1 = (size_t)(ncells > 0 ? ncells : 1);
    self->coef = PyMem_Malloc(cells_1 * (size_t)npairs * sizeof(double));
    self->pos = PyMem_Malloc(cells_1 * sizeof(Py_ssize_t));
    self->env = PyMem_Malloc((size_t)size * sizeof(Py_ssize_t));
    self->start = PyMem_Malloc((size_t)size * sizeof(Py_ssize_t));
    self->v = PyMem_Malloc((size_t)nv * sizeof(double));
    self->w = PyMem_Malloc((size_t)npairs * sizeof(double));
    if (!self->coef || !self->pos || !self->env || !self->start || !self->v || !self->w) {
        PyErr_NoMemory();
        goto fail;
    }
    if (plan_envelope(self, cf, cl, ncells) < 0)
        goto fail;
    self->L = PyMem_Malloc((size_t)self->packed * sizeof(double));
    if (self->L == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    PyMem_Free(cf);
    PyMem_Free(cl);
    return (PyObject *)self;
fail:
    PyMem_Free(cf);
    PyMem_Free(cl);
    Py_DECREF(self);
    return NULL;
}

static PyObject *envelope_packed(PyObject *obj, void *Py_UNUSED(closure)) {
    return PyLong_FromSsize_t(((Envelope *)obj)->packed);
}

static PyMethodDef envelope_methods[] = {
    {"terms", envelope_terms, METH_O,
     "terms(theta) -> (ldL2, ldRX2, pwrss), or None when M(theta) is not positive definite."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef envelope_getset[] = {
    {"packed", envelope_packed, NULL, "Numbers held in the envelope of M.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject EnvelopeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mixedbridge.lmm._envelope.Envelope",
    .tp_doc = "Envelope(first, second, coef, cells, size, q, dof, sum_log_w, ldR, reml): the "
              "criterion profiled over sigma at theta, called as f(theta) or f(theta, gradient).",
    .tp_basicsize = sizeof(Envelope),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(Envelope, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_new = envelope_new,
    .tp_dealloc = (destructor)envelope_dealloc,
    .tp_methods = envelope_methods,
    .tp_getset = envelope_getset,
};

static struct PyModuleDef envelope_module = {
    PyModuleDef_HEAD_INIT, "_envelope",
    "The small-model criterion: M's envelope Cholesky factor in compiled code.", -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__envelope(void) {
    if (PyType_Ready(&EnvelopeType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&envelope_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&EnvelopeType);
    if (PyModule_AddObject(m, "Envelope", (PyObject *)&EnvelopeType) < 0) {
        Py_DECREF(&EnvelopeType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
