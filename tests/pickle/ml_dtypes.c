/*
 * ml_dtypes.c - a Python extension module named `ml_dtypes` with one scalar
 * type, `bfloat16`, registered with numpy as a user-defined dtype through
 * numpy's own C API (PyArray_RegisterDataType). Its descriptor has the
 * fields that jax-ml/ml_dtypes 0.2-0.3 give their bfloat16
 * (ml_dtypes/_src/custom_float.h and dtypes.cc: kind 'V', type 'E',
 * byteorder '=', flags NPY_NEEDS_PYAPI | NPY_USE_SETITEM, elsize and
 * alignment those of a 2-byte struct, __module__ "ml_dtypes").
 *
 * Why: ml_dtypes is not packaged by Debian, and the official checkpoint's
 * scales are numpy arrays of ml_dtypes.bfloat16. With this module the
 * tests pickle real numpy arrays of a real extended dtype of that name, so
 * the bytes numpy writes for them (arraydescr_reduce, array_reduce) come
 * from numpy itself, not from our beliefs about it. It implements only what
 * making such arrays from bit patterns, pickling and unpickling them need:
 * getitem/setitem (as a Python float), copyswap(n) and nonzero.
 * Built by tests/pickle_real_test.sh with the compiler and python3-dev.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <numpy/arrayscalars.h>
#include <stdint.h>
#include <string.h>

/* numpy 2 takes a prototype struct laid out like numpy 1's descriptor */
#if NPY_ABI_VERSION < 0x02000000
#define PyArray_DescrProto PyArray_Descr
#endif

typedef struct {
    PyObject_HEAD uint16_t bits;
} bf16_object;

static float bits_to_float(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* round to nearest even, NaN kept quiet */
static uint16_t float_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static PyTypeObject bf16_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ml_dtypes.bfloat16",
    .tp_basicsize = sizeof(bf16_object),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "bfloat16 (a test stand-in registered through numpy's C API)",
};

static int as_bits(PyObject *o, uint16_t *out) {
    if (PyObject_TypeCheck(o, &bf16_type)) {
        *out = ((bf16_object *)o)->bits;
        return 0;
    }
    double d = PyFloat_AsDouble(o);
    if (d == -1.0 && PyErr_Occurred()) return -1;
    *out = float_to_bits((float)d);
    return 0;
}

static PyObject *bf16_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    PyObject *v = NULL;
    if (kwds && PyDict_Size(kwds)) {
        PyErr_SetString(PyExc_TypeError, "bfloat16() takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "|O", &v)) return NULL;
    uint16_t b = 0;
    if (v && as_bits(v, &b) < 0) return NULL;
    bf16_object *o = (bf16_object *)type->tp_alloc(type, 0);
    if (o) o->bits = b;
    return (PyObject *)o;
}

static PyObject *bf16_float(PyObject *self) {
    return PyFloat_FromDouble(bits_to_float(((bf16_object *)self)->bits));
}

static PyObject *bf16_repr(PyObject *self) {
    PyObject *f = bf16_float(self);
    if (!f) return NULL;
    PyObject *r = PyObject_Repr(f);
    Py_DECREF(f);
    return r;
}

static PyNumberMethods bf16_number = {.nb_float = bf16_float};

static PyObject *np_getitem(void *data, void *arr) {
    (void)arr;
    uint16_t b;
    memcpy(&b, data, 2);
    return PyFloat_FromDouble(bits_to_float(b));
}

static int np_setitem(PyObject *item, void *data, void *arr) {
    (void)arr;
    uint16_t b;
    if (as_bits(item, &b) < 0) return -1;
    memcpy(data, &b, 2);
    return 0;
}

static void np_copyswap(void *dst, void *src, int swap, void *arr) {
    (void)arr;
    if (!src) return;
    uint8_t *d = dst;
    memmove(d, src, 2);
    if (swap) {
        uint8_t t = d[0];
        d[0] = d[1];
        d[1] = t;
    }
}

static void np_copyswapn(void *dst, npy_intp dstride, void *src, npy_intp sstride, npy_intp n, int swap,
                         void *arr) {
    if (!src) return;
    for (npy_intp i = 0; i < n; i++)
        np_copyswap((char *)dst + i * dstride, (char *)src + i * sstride, swap, arr);
}

static npy_bool np_nonzero(void *data, void *arr) {
    (void)arr;
    uint16_t b;
    memcpy(&b, data, 2);
    return (b & 0x7fff) != 0;
}

static PyArray_ArrFuncs funcs;
static PyArray_DescrProto proto;

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, .m_name = "ml_dtypes", .m_size = -1};

PyMODINIT_FUNC PyInit_ml_dtypes(void) {
    import_array();
    bf16_type.tp_base = &PyGenericArrType_Type;
    bf16_type.tp_new = bf16_new;
    bf16_type.tp_repr = bf16_repr;
    bf16_type.tp_as_number = &bf16_number;
    if (PyType_Ready(&bf16_type) < 0) return NULL;

    PyArray_InitArrFuncs(&funcs);
    funcs.getitem = np_getitem;
    funcs.setitem = np_setitem;
    funcs.copyswap = np_copyswap;
    funcs.copyswapn = np_copyswapn;
    funcs.nonzero = np_nonzero;
    Py_SET_TYPE(&proto, &PyArrayDescr_Type);
    Py_SET_REFCNT(&proto, 1);
    proto.typeobj = &bf16_type;
    proto.kind = 'V';
    proto.type = 'E';
    proto.byteorder = '=';
    proto.flags = NPY_NEEDS_PYAPI | NPY_USE_SETITEM;
    proto.elsize = 2;
    proto.alignment = 2; /* alignof(Eigen::bfloat16), a struct of one uint16_t */
    proto.f = &funcs;
    if (PyArray_RegisterDataType(&proto) < 0) return NULL;

    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&bf16_type);
    if (PyModule_AddObject(m, "bfloat16", (PyObject *)&bf16_type) < 0) {
        Py_DECREF(&bf16_type);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
