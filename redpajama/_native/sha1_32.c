/*
 * First 4 bytes of SHA-1 (read little-endian) of many byte ranges of one buffer.
 *
 * This is datasketch's `sha1_hash32`, the base hash of RedPajama-V2's MinHash. In Python each
 * shingle costs one hashlib call (~1 us, mostly call overhead); here the loop over shingles runs
 * in C, calling OpenSSL's SHA1 (the library Python's hashlib uses too). Built only where OpenSSL's
 * headers are installed (setup.py marks the extension optional); otherwise hashlib is used.
 *
 *   sha1_32(buffer, starts, ends) -> bytes   # len(starts) uint32 values, little-endian
 *
 * `starts`/`ends` are buffers of int64 (numpy arrays); ranges must lie inside `buffer`.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* SHA1() is "deprecated" in OpenSSL 3 in favour of EVP, whose per-call setup costs more than the
 * hash of one short shingle; the one-shot function is what this loop wants. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

/* The first word of SHA-1(data), i.e. digest bytes 0..3 as a big-endian uint32. OpenSSL's SHA1 uses
 * the CPU's SHA extensions where present: per shingle it costs a fraction of one hashlib call. */
static inline uint32_t sha1_first_word(const unsigned char *data, size_t len) {
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1(data, len, md);
    return ((uint32_t)md[0] << 24) | ((uint32_t)md[1] << 16) | ((uint32_t)md[2] << 8) | (uint32_t)md[3];
}

static PyObject *sha1_32(PyObject *self, PyObject *args) {
    Py_buffer data, starts, ends;
    if (!PyArg_ParseTuple(args, "y*y*y*", &data, &starts, &ends)) return NULL;
    PyObject *out = NULL;
    if (starts.len != ends.len || starts.len % 8 != 0) {
        PyErr_SetString(PyExc_ValueError, "starts and ends must be int64 buffers of equal length");
        goto done;
    }
    Py_ssize_t n = starts.len / 8;
    const int64_t *s = (const int64_t *)starts.buf, *e = (const int64_t *)ends.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (s[i] < 0 || e[i] < s[i] || e[i] > data.len) {
            PyErr_Format(PyExc_ValueError, "range %zd [%lld, %lld) is outside the buffer of %zd bytes",
                         i, (long long)s[i], (long long)e[i], data.len);
            goto done;
        }
    }
    out = PyBytes_FromStringAndSize(NULL, n * 4);
    if (out == NULL) goto done;
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
    const unsigned char *buf = (const unsigned char *)data.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t word = sha1_first_word(buf + s[i], (size_t)(e[i] - s[i]));
        /* digest bytes 0..3 in order; read as little-endian by the caller, as datasketch does */
        dst[4 * i] = (unsigned char)(word >> 24);
        dst[4 * i + 1] = (unsigned char)(word >> 16);
        dst[4 * i + 2] = (unsigned char)(word >> 8);
        dst[4 * i + 3] = (unsigned char)word;
    }
    Py_END_ALLOW_THREADS
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&ends);
    return out;
}

static PyMethodDef methods[] = {
    {"sha1_32", sha1_32, METH_VARARGS, "First 4 digest bytes of SHA-1 of each buffer[start:end]."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "sha1_32", NULL, -1, methods};

PyMODINIT_FUNC PyInit_sha1_32(void) { return PyModule_Create(&module); }
