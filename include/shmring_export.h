/* shmring_export.h - SHMRING_API, the mark of a symbol libshmring exports.
 *
 * The library is compiled with -fvisibility=hidden, so only a declaration
 * marked SHMRING_API here in include/ is visible outside it (and
 * ring/version.map lists the same names for the shared library).  Every
 * function of the public API carries it; nothing else in ring/ does, so the
 * library's internals (prefix shmring__) stay out of an application's
 * namespace, whether it links libshmring.a or libshmring.so (issue 10;
 * tests/link/ checks both).
 */
#ifndef SHMRING_EXPORT_H
#define SHMRING_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define SHMRING_API __attribute__((visibility("default")))
#else
#define SHMRING_API
#endif

#endif /* SHMRING_EXPORT_H */
