/* lw_trace_*: recording a trace from inside a program.
 *
 * For programs that link the traced allocator statically
 * (liblwmalloc-trace.a: lwmalloc compiled with LW_TRACE plus the
 * recorder). Nothing is recorded until lw_trace_start(); a trace is
 * finished by lw_trace_stop() or at exit. In liblwmalloc-trace.so (what
 * `lwtrace record` preloads) recording starts by itself, and these calls
 * can stop it or start a new file later.
 *
 * Environment read at start: LW_TRACE_DEPTH (stack depth, 0 = no stacks,
 * default 24), LW_TRACE_FOLLOW_FORK=1 (a forked child writes its own file
 * PATH-STEM.PID.lwt.zst).
 */
#ifndef LW_TRACE_H
#define LW_TRACE_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define LWT_API __attribute__((visibility("default")))
#else
#define LWT_API
#endif

/* Starts writing a trace to path (created; an existing file is never
 * overwritten: a ".N" sequence is added to the name). Returns 0, or -1
 * with errno set (EBUSY: a trace is being recorded). */
LWT_API int lw_trace_start(const char *path);
/* Drains every thread's buffer, writes the end record and closes the
 * file. Returns 0, or -1 with errno EINVAL when no trace is recording. */
LWT_API int lw_trace_stop(void);
/* 1 while a trace is being recorded. */
LWT_API int lw_trace_active(void);
/* Path of the file being (or last) written, "" if none. */
LWT_API const char *lw_trace_path(void);

#ifdef __cplusplus
}
#endif
#endif /* LW_TRACE_H */
