/*
 * Optional C accelerator for WebSocket payload masking (RFC 6455, 5.3).
 *
 * Every payload byte i is XORed with mask[i % 4].  Because the mask period
 * (4) divides 8, the mask can be widened to a 64-bit word once and applied to
 * eight bytes per step without ever re-aligning it; only the final 0-7 bytes
 * are handled one at a time.
 *
 * All loads and stores of the payload go through memcpy, so the code never
 * performs unaligned or type-punned accesses (both undefined behaviour in C);
 * compilers turn these fixed-size memcpy calls into plain register moves and
 * are free to vectorise the loop further.  XOR is a byte-wise operation, so the
 * result does not depend on the machine's byte order.
 *
 * The pure-Python implementation in mask.py is the reference; this module must
 * stay behaviourally identical to it.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

/* Inputs at least this large are masked with the GIL released, so other
 * threads can run meanwhile.  Below it, the cost of dropping and re-taking
 * the GIL is comparable to the work itself. */
#define RELEASE_GIL_THRESHOLD ((Py_ssize_t)64 * 1024)

/*
 * XOR `len` bytes from `src` into `dst` with the 4-byte `mask`, starting at
 * mask offset 0.  `src` and `dst` may be the same pointer (in-place masking);
 * they must not otherwise overlap.
 */
static void
xor_mask(const unsigned char *src, unsigned char *dst, Py_ssize_t len,
         const unsigned char mask[4])
{
    unsigned char wide[8];
    uint64_t mask64;
    Py_ssize_t i = 0;

    memcpy(wide, mask, 4);
    memcpy(wide + 4, mask, 4);
    memcpy(&mask64, wide, 8);

    /* Four words per iteration gives the optimiser an easy 32-byte block. */
    for (; i + 32 <= len; i += 32) {
        uint64_t a, b, c, d;
        memcpy(&a, src + i, 8);
        memcpy(&b, src + i + 8, 8);
        memcpy(&c, src + i + 16, 8);
        memcpy(&d, src + i + 24, 8);
        a ^= mask64;
        b ^= mask64;
        c ^= mask64;
        d ^= mask64;
        memcpy(dst + i, &a, 8);
        memcpy(dst + i + 8, &b, 8);
        memcpy(dst + i + 16, &c, 8);
        memcpy(dst + i + 24, &d, 8);
    }
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, src + i, 8);
        w ^= mask64;
        memcpy(dst + i, &w, 8);
    }
    /* i is a multiple of 8 here, hence of 4, so the mask phase is i & 3. */
    for (; i < len; i++) {
        dst[i] = (unsigned char)(src[i] ^ mask[i & 3]);
    }
}

PyDoc_STRVAR(apply_mask_doc,
"apply_mask(data, mask, /)\n"
"--\n"
"\n"
"Return ``data`` XORed with the 4-byte WebSocket ``mask`` (RFC 6455, 5.3).\n"
"\n"
"``data`` may be any object supporting the buffer protocol (bytes,\n"
"bytearray, memoryview, ...), including non-contiguous views.  ``mask``\n"
"must be exactly 4 bytes long, otherwise ValueError is raised.  The result\n"
"is a new bytes object; applying the same mask twice restores the input.");

static PyObject *
apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data_buf;
    Py_buffer mask_buf;
    unsigned char mask[4];
    PyObject *result;
    unsigned char *out;
    Py_ssize_t len;

    (void)module;

    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError,
                     "apply_mask() takes exactly 2 positional arguments "
                     "(%zd given)", nargs);
        return NULL;
    }

    /* The mask: any contiguous bytes-like object of exactly four bytes. */
    if (PyObject_GetBuffer(args[1], &mask_buf, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (mask_buf.len != 4) {
        PyErr_Format(PyExc_ValueError,
                     "mask must contain exactly 4 bytes, got %zd",
                     mask_buf.len);
        PyBuffer_Release(&mask_buf);
        return NULL;
    }
    memcpy(mask, mask_buf.buf, 4);
    PyBuffer_Release(&mask_buf);

    /* The data: ask for full stride information so strided memoryviews are
     * accepted as well; they are flattened into the result first. */
    if (PyObject_GetBuffer(args[0], &data_buf, PyBUF_FULL_RO) < 0) {
        return NULL;
    }
    len = data_buf.len;

    result = PyBytes_FromStringAndSize(NULL, len);
    if (result == NULL) {
        PyBuffer_Release(&data_buf);
        return NULL;
    }
    if (len == 0) {
        PyBuffer_Release(&data_buf);
        return result;
    }
    out = (unsigned char *)PyBytes_AS_STRING(result);

    if (PyBuffer_IsContiguous(&data_buf, 'C')) {
        const unsigned char *src = (const unsigned char *)data_buf.buf;
        if (len >= RELEASE_GIL_THRESHOLD) {
            Py_BEGIN_ALLOW_THREADS
            xor_mask(src, out, len, mask);
            Py_END_ALLOW_THREADS
        }
        else {
            xor_mask(src, out, len, mask);
        }
    }
    else {
        /* Gather the strided view into the output, then mask it in place. */
        if (PyBuffer_ToContiguous(out, &data_buf, len, 'C') < 0) {
            Py_DECREF(result);
            PyBuffer_Release(&data_buf);
            return NULL;
        }
        if (len >= RELEASE_GIL_THRESHOLD) {
            Py_BEGIN_ALLOW_THREADS
            xor_mask(out, out, len, mask);
            Py_END_ALLOW_THREADS
        }
        else {
            xor_mask(out, out, len, mask);
        }
    }

    PyBuffer_Release(&data_buf);
    return result;
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL,
     apply_mask_doc},
    {NULL, NULL, 0, NULL},
};

/* The module keeps no state, so it is safe in sub-interpreters with their own
 * GIL and in free-threaded builds. */
static PyModuleDef_Slot speedups_slots[] = {
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

PyDoc_STRVAR(speedups_doc,
"C accelerator for django_websocket.protocol.mask (optional).");

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "_speedups",      /* m_name */
    speedups_doc,     /* m_doc */
    0,                /* m_size */
    speedups_methods, /* m_methods */
    speedups_slots,   /* m_slots */
    NULL,             /* m_traverse */
    NULL,             /* m_clear */
    NULL,             /* m_free */
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
