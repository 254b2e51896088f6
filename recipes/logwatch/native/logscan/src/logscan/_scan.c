/* logscan._scan: count the lines of a buffer and the lines holding any of a few patterns.
 *
 * The inner loop of logwatch: memchr/memmem over the whole buffer, no Python objects per
 * line. Compiled by buildkit with the recipe's hardening flags (stack protector, FORTIFY,
 * RELRO, ...), or by cibuildwheel with the same flags for other targets. */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>
#include <stdio.h>
#include <string.h>

#define MAX_PATTERNS 16

static PyObject *scan(PyObject *self, PyObject *args) {
    Py_buffer data;
    PyObject *patterns;
    if (!PyArg_ParseTuple(args, "y*O!", &data, &PyTuple_Type, &patterns)) {
        return NULL;
    }
    Py_ssize_t npat = PyTuple_GET_SIZE(patterns);
    if (npat > MAX_PATTERNS) {
        PyBuffer_Release(&data);
        char message[96];
        snprintf(message, sizeof(message), "at most %d patterns, not %zd", MAX_PATTERNS, npat);
        PyErr_SetString(PyExc_ValueError, message);
        return NULL;
    }
    const char *needles[MAX_PATTERNS];
    Py_ssize_t lengths[MAX_PATTERNS];
    Py_ssize_t counts[MAX_PATTERNS];
    for (Py_ssize_t i = 0; i < npat; i++) {
        PyObject *p = PyTuple_GET_ITEM(patterns, i);
        if (!PyBytes_Check(p) || PyBytes_GET_SIZE(p) == 0) {
            PyBuffer_Release(&data);
            PyErr_SetString(PyExc_TypeError, "patterns must be non-empty bytes");
            return NULL;
        }
        needles[i] = PyBytes_AS_STRING(p);
        lengths[i] = PyBytes_GET_SIZE(p);
        counts[i] = 0;
    }
    const char *start = data.buf;
    const char *end = start + data.len;
    Py_ssize_t lines = 0, matching = 0;
    Py_BEGIN_ALLOW_THREADS
    while (start < end) {
        const char *nl = memchr(start, '\n', (size_t)(end - start));
        const char *stop = nl ? nl : end;
        size_t len = (size_t)(stop - start);
        int hit = 0;
        for (Py_ssize_t i = 0; i < npat; i++) {
            if (memmem(start, len, needles[i], (size_t)lengths[i]) != NULL) {
                counts[i]++;
                hit = 1;
            }
        }
        lines++;
        matching += hit;
        start = nl ? nl + 1 : end;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    PyObject *per = PyTuple_New(npat);
    if (per == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < npat; i++) {
        PyTuple_SET_ITEM(per, i, PyLong_FromSsize_t(counts[i]));
    }
    return Py_BuildValue("(nnN)", lines, matching, per);
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS,
     "scan(data: bytes, patterns: tuple[bytes, ...]) -> (lines, matching lines, per-pattern counts)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "logscan._scan", NULL, -1, methods};

PyMODINIT_FUNC PyInit__scan(void) { return PyModule_Create(&module); }
